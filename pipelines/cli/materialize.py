"""`tally materialize`: run assets in-process, for one day, a range (one run), or every day
that has usage."""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime

import typer
from rich.console import Console
from rich.table import Table

from pipelines.cli.context import CommandFailed, StoreContext, failures_reported, store
from pipelines.cli.report import parse_day

console = Console(stderr=True)
DEFAULT_SELECTION = "group:pricing or group:attribution or group:costs"


def partition_bounds(context: StoreContext) -> tuple[date, date]:
    """The first and last daily partition: TALLY_PARTITIONS_START to today (UTC)."""
    today = datetime.now(UTC).date()
    return date.fromisoformat(context.settings.partitions_start), today


def materialize_days(
    selection: str, start: date | None, end: date | None, context: StoreContext
) -> tuple[bool, list[tuple[str, str]], list[tuple[str, str, bool]]]:
    """Materialise `selection` over [start, end] in one run (one day when equal), recorded in
    the instance `tally ui` shows."""
    warnings.filterwarnings("ignore", category=UserWarning, module="dagster")
    import dagster as dg

    # `backfill_policy` (one run per range) is a deliberate use of a beta parameter: the
    # notice is for whoever writes the definitions, not for the person running them.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)

    import assets
    from ingestion.store import CanonicalStore
    from pipelines.instance import shared_instance
    from pipelines.resources import build_resources

    database_url = context.url
    first, last = partition_bounds(context)
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
    loaded = dg.load_assets_from_package_module(assets)
    kwargs: dict[str, object] = {}
    if start == end:
        kwargs["partition_key"] = start.isoformat()
    else:
        kwargs["tags"] = {
            "dagster/asset_partition_range_start": start.isoformat(),
            "dagster/asset_partition_range_end": end.isoformat(),
        }
    from dagster._core.definitions.asset_selection import DagsterInvalidAssetSelectionError

    instance = shared_instance(
        database_url, context.settings.resolved_data_dir, context.settings.dagster_database
    )
    with instance:
        try:
            result = dg.materialize(
                loaded,
                instance=instance,
                selection=selection,
                resources=build_resources(database_url=database_url),
                raise_on_error=False,
                # the event log stays in the run; the terminal gets warnings and errors only
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                **kwargs,  # type: ignore[arg-type]
            )
        except DagsterInvalidAssetSelectionError as error:
            raise CommandFailed(f"{error} (e.g. 'usage_priced' or 'group:costs')") from None
        materialized = [
            (event.asset_key.to_user_string(), str(event.partition or f"{start}..{end}"))
            for event in result.get_asset_materialization_events()
        ]
        checks = [
            (check.asset_key.to_user_string(), check.check_name, check.passed)
            for check in result.get_asset_check_evaluations()
        ]
    return result.success, materialized, checks


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
        success, materialized, checks = materialize_days(select, start, end, context)
    table = Table(title="materialised" if success else "materialisation failed")
    table.add_column("asset")
    table.add_column("check")
    table.add_column("result")
    for asset_key in sorted({key for key, _ in materialized}):
        table.add_row(asset_key, "", "materialised")
    for asset_key, check_name, passed in checks:
        table.add_row(asset_key, check_name, "passed" if passed else "[red]FAILED[/]")
    console.print(table)
    if not success:
        raise typer.Exit(1)
