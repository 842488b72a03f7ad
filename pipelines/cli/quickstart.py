"""`tally run`: what `make run` does. Ingest the agent logs found on this machine (or the
bundled demo data when there are none) and print the report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from pipelines.cli.context import CommandFailed, failures_reported, progress_console, store
from pipelines.cli.output import render

if TYPE_CHECKING:
    from ingestion.settings import TallySettings

console = progress_console()


def _has_logs(path: Path) -> bool:
    return path.is_dir() and any(path.rglob("*.jsonl"))


def run() -> None:
    """Set up the store, ingest agent logs (or demo data), materialise the cost assets for
    every day with usage, and print the cost report and where its HTML version is."""
    from ingestion.sources import CLAUDE_CODE, CODEX, FileSource, log_directories
    from pipelines.cli.ingest import print_summary, run_source
    from pipelines.cli.output import OutputFormat
    from pipelines.cli.report import UsageGrouping, usage

    started = time.monotonic()
    with failures_reported():
        context = store()
        settings = context.settings
        directories = {s: log_directories(s, settings) for s in (CLAUDE_CODE, CODEX)}
        demo = not any(_has_logs(d) for roots in directories.values() for d in roots)
        paths: dict[FileSource, Path | None] = dict.fromkeys(directories)
        if demo:
            from ingestion.demo.corpus import generate_corpus

            demo_root = settings.resolved_data_dir / "demo"
            if not _has_logs(demo_root):
                generate_corpus(demo_root, megabytes=5.0)
            looked = " or ".join(
                str(d) for d in [*settings.claude_dirs_looked_in, *directories[CODEX]]
            )
            console.print(
                escape(f"no agent logs in {looked}: using demo data in {demo_root}"),
                soft_wrap=True,
            )
            paths = {
                CLAUDE_CODE: demo_root / "claude" / "projects",
                CODEX: demo_root / "codex" / "sessions",
            }
        summaries = []
        for source, path in paths.items():
            if (path or directories[source][0]).is_dir():
                summaries.extend(run_source(source, path, context))
        _work_graph(context.conninfo, settings, demo)
    print_summary(summaries, time.monotonic() - started)
    usage(
        by=UsageGrouping.model,
        since=None,
        until=None,
        fmt=OutputFormat.table,
        refresh=False,
        company=None,
        project=None,
        agent=None,
        source=None,
    )
    with failures_reported():
        from pipelines.cli.materialize import DEFAULT_SELECTION, materialize_days

        outcome = materialize_days(DEFAULT_SELECTION, None, None, context)
        failed = [f"{asset}.{check}" for asset, check, passed in outcome.checks if not passed]
        console.print(
            f"materialised the cost assets: {len(outcome.checks)} checks, "
            f"{len(failed)} failed {failed if failed else ''}"
        )
        if not outcome.success:
            reasons = "; ".join(f"{step}: {message}" for step, message in outcome.failures)
            raise CommandFailed(f"materialisation failed: {reasons or 'see `tally materialize`'}")
        from pipelines.cli.report import cost_columns, cost_rows, write_html_report

        rows = cost_rows(settings, "day", "auto", None, None)
        render(
            rows, OutputFormat.table, title="cost by day (auto)", columns=cost_columns("day", rows)
        )
        tools = cost_rows(settings, "source", "auto", None, None)
        console.print("by tool: " + ", ".join(
            f"{escape(str(row['source']))} ${row['cost_usd']:,.2f} ({row['requests']:,} requests)"
            for row in tools) + " (`tally report costs --by source`)")  # fmt: skip
        path = write_html_report(settings, "auto", None, None, None)
        from ingestion.reports.attribution import coverage
        from ingestion.warehouse.base import open_warehouse

        summary = coverage(open_warehouse(settings.resolved_warehouse_url))
    share = summary.get("token_share") or {}
    if share:
        console.print(
            f"attribution: {share['attributed']:.1%} of tokens attributed to an issue, "
            f"{share['ambiguous']:.1%} ambiguous, {share['unattributed']:.1%} unattributed "
            "(`tally report costs --by issue`, `tally report attribution`)"
        )
    console.print(f"HTML cost report: {escape(str(path))}", soft_wrap=True)


def _work_graph(conninfo: str, settings: TallySettings, demo: bool) -> None:
    """Ingest the configured work-graph sources; on demo data, a demo Pigeon board."""
    from ingestion.adapters.paperclip import PaperclipError
    from ingestion.adapters.pigeon import PigeonError
    from ingestion.workgraph.ingest import configured_upstreams

    pigeon_db = None
    if settings.pigeon_db is None and demo:
        from ingestion.demo.board import demo_sessions, write_demo_board

        pigeon_db = settings.resolved_data_dir / "demo" / "pigeon.db"
        cards = write_demo_board(pigeon_db, demo_sessions(conninfo))
        console.print(f"demo Pigeon board with {cards} cards: {escape(str(pigeon_db))}")
    loads = configured_upstreams(conninfo, settings, pigeon_db)
    for source, load in loads.items():
        try:
            summary, _ = load()
        except (PigeonError, PaperclipError) as error:
            # the costs do not depend on it: say why it was left out and go on
            console.print(
                f"[yellow]warning:[/] {source} skipped: {escape(str(error))}", soft_wrap=True
            )
            continue
        if summary.unchanged:
            console.print(f"{source}: unchanged since its last load")
            continue
        console.print(f"{source}: {summary.total_changed:,} rows changed, "
                      f"{summary.rejects:,} rejected")  # fmt: skip
