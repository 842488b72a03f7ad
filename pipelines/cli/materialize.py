"""`tally materialize`: run assets in-process, for one day, a range (one run), or every day
that has usage."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from ingestion.messages import first_line
from pipelines.cli.context import (
    CommandFailed,
    StoreContext,
    failures_reported,
    progress_console,
    store,
)
from pipelines.cli.report import parse_day

console = progress_console()
DEFAULT_SELECTION = "group:pricing or group:attribution or group:costs"


@dataclass(frozen=True)
class Outcome:
    success: bool
    materialized: list[tuple[str, str]]  # (asset, partition or range)
    checks: list[tuple[str, str, bool]]  # (asset, check, passed)
    failures: list[tuple[str, str]]  # (step, error message)
    run_id: str


def materialize_days(
    selection: str, start: date | None, end: date | None, context: StoreContext
) -> Outcome:
    """Materialise `selection` over [start, end] in one run (one day when equal), recorded in
    the instance `tally ui` shows."""
    warnings.filterwarnings("ignore", category=UserWarning, module="dagster")
    import dagster as dg

    # Beta notices (Dagster's own selection parser passes a beta parameter) are for whoever
    # writes the definitions, not for the person running them.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)

    import assets
    from ingestion.store import CanonicalStore
    from pipelines.cli.runs import close_and_report, wait_for_pools
    from pipelines.dagster_patches import patch_pool_wait
    from pipelines.instance import shared_instance
    from pipelines.orphaned_runs import run_tags
    from pipelines.resources import build_resources

    database_url = context.url
    first, last = context.settings.partition_bounds()
    if start is None or end is None:
        days = CanonicalStore(database_url).usage_days()
        if not days:
            raise CommandFailed("no usage in the canonical store yet: run `tally ingest` first")
        inside = [day for day in days if first <= day <= last]
        if len(inside) < len(days):
            console.print(
                f"[yellow]warning:[/] {len(days) - len(inside)} day(s) of usage fall outside "
                f"the daily partitions ({first} to {last}) and are not materialised; "
                "TALLY_PARTITIONS_START sets the first day"
            )
        if not inside:
            raise CommandFailed(f"no usage within the daily partitions ({first} to {last})")
        start, end = inside[0], inside[-1]
    for day in (start, end):
        if not first <= day <= last:
            raise CommandFailed(
                f"{day} is outside the daily partitions ({first} to {last}, today in UTC); "
                "TALLY_PARTITIONS_START sets the first day"
            )
    patch_pool_wait()
    loaded = dg.load_assets_from_package_module(assets)
    pools = _pools_of(dg, loaded, _check_selection(dg, selection, loaded))
    tags = run_tags()
    kwargs: dict[str, object] = {}
    if start == end:
        kwargs["partition_key"] = start.isoformat()
    else:
        tags["dagster/asset_partition_range_start"] = start.isoformat()
        tags["dagster/asset_partition_range_end"] = end.isoformat()
    instance = shared_instance(
        database_url, context.settings.resolved_data_dir, context.settings.dagster_database
    )
    with instance:
        close_and_report(instance)
        wait_for_pools(instance, pools)
        result = dg.materialize(
            loaded,
            instance=instance,
            selection=selection,
            resources=build_resources(database_url=database_url),
            raise_on_error=False,
            # the event log, tracebacks included, stays in the run (`tally ui` shows it);
            # the terminal gets one line per failed step, printed by the caller
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
            tags=tags,
            **kwargs,  # type: ignore[arg-type]
        )
        materialized = [
            (event.asset_key.to_user_string(), str(event.partition or f"{start}..{end}"))
            for event in result.get_asset_materialization_events()
        ]
        checks = [
            (check.asset_key.to_user_string(), check.check_name, check.passed)
            for check in result.get_asset_check_evaluations()
        ]
        failures = [
            (event.step_key or "run", _originating_message(event.step_failure_data.error))
            for event in result.all_events
            if event.is_step_failure and event.step_failure_data is not None
        ]
        if any(_interrupted(event) for event in result.all_events):
            console.print(
                f"interrupted: run {result.run_id} stopped and marked failed; each day it had "
                "replaced keeps its new rows, the others their old ones"
            )
            raise typer.Exit(130)
        if not result.success and not failures:  # the run failed outside any step
            failures = [
                ("run", first_line(event.message, "failed"))
                for event in result.all_events
                if event.is_run_failure
            ]
    return Outcome(result.success, materialized, checks, failures, result.run_id)


def _check_selection(dg: Any, selection: str, loaded: Sequence[Any]) -> set[Any]:
    """The keys `selection` chooses. A selection that is not one, names an asset that does
    not exist, or selects none of the daily assets (only the source, say) is one line naming
    what can be selected, not Dagster's traceback from deep inside the run's planning."""
    from dagster._core.definitions.asset_selection import DagsterInvalidAssetSelectionError
    from dagster._core.errors import DagsterInvalidSubsetError

    daily = [a for a in loaded if isinstance(a, dg.AssetsDefinition) and a.partitions_def]
    names = sorted(key.to_user_string() for a in daily for key in a.keys)
    groups = sorted({group for a in daily for group in a.group_names_by_key.values()})
    choices = f"{', '.join(names)}, or a group: {', '.join(f'group:{g}' for g in groups)}"
    try:
        chosen = dg.AssetSelection.from_string(selection).resolve(loaded)
    except DagsterInvalidAssetSelectionError:
        raise CommandFailed(f"--select {selection!r} is not a selection; try {choices}") from None
    except DagsterInvalidSubsetError:
        raise CommandFailed(
            f"--select {selection!r} names an asset that does not exist; the assets are {choices}"
        ) from None
    if not {key.to_user_string() for key in chosen} & set(names):
        raise CommandFailed(f"--select {selection!r} selects no daily asset; try {choices}")
    return chosen


def _pools_of(dg: Any, loaded: Sequence[Any], chosen: set[Any]) -> set[str]:
    """The pools the chosen assets run in (one writer at a time in each)."""
    return {
        asset.node_def.pool
        for asset in loaded
        if isinstance(asset, dg.AssetsDefinition) and asset.node_def.pool
        and set(asset.keys) & chosen
    }  # fmt: skip


def _interrupted(event: Any) -> bool:
    """A step that Ctrl-C (or SIGTERM) stopped: Dagster turns the signal into this error."""
    failure = event.step_failure_data if event.is_step_failure else None
    return failure is not None and failure.error.cls_name == "DagsterExecutionInterruptedError"


def _originating_message(error: object) -> str:
    """The message of the error that started it (Dagster wraps it in its own), without the
    traceback Dagster keeps in its event log."""
    while getattr(error, "cause", None) is not None:
        error = error.cause  # type: ignore[attr-defined]
    return first_line(getattr(error, "message", "") or error, "unknown error")


def materialize(
    select: str = typer.Option(DEFAULT_SELECTION, "--select", help="Asset selection."),
    partition: str | None = typer.Option(None, "--partition", help="One UTC day."),
    from_day: str | None = typer.Option(None, "--from", help="First day of a range."),
    to_day: str | None = typer.Option(None, "--to", help="Last day of a range (inclusive)."),
) -> None:
    """Materialise assets in-process: a day, a range as one run, or every day with usage."""
    if partition and (from_day or to_day):
        raise typer.BadParameter("use --partition or --from/--to, not both")
    if bool(from_day) != bool(to_day):
        raise typer.BadParameter("--from and --to go together")
    start = parse_day(partition or from_day)
    end = parse_day(partition or to_day)
    if start is not None and end is not None and start > end:
        raise typer.BadParameter(f"--from {start} is after --to {end}")
    with failures_reported():
        context = store()
        outcome = materialize_days(select, start, end, context)
    table = Table(title="materialised" if outcome.success else "materialisation failed")
    table.add_column("asset")
    table.add_column("check")
    table.add_column("result")
    for asset_key in sorted({key for key, _ in outcome.materialized}):
        table.add_row(asset_key, "", "materialised")
    for asset_key, check_name, passed in outcome.checks:
        table.add_row(asset_key, check_name, "passed" if passed else "[red]FAILED[/]")
    console.print(table)
    for step, message in outcome.failures:
        console.print(f"[bold red]error:[/] {escape(step)}: {escape(message)}")
    if outcome.failures:
        console.print(
            f"the run's full log, tracebacks included: run {outcome.run_id} in `tally ui`"
        )
    if not outcome.success:
        raise typer.Exit(1)
