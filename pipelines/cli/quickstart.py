"""`tally run`: what `make run` does. Ingest the agent logs found on this machine (or the
bundled demo data when there are none) and print the report."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from pipelines.cli.context import CommandFailed, failures_reported, store
from pipelines.cli.output import render

console = Console(stderr=True)


def _has_logs(path: Path) -> bool:
    return path.is_dir() and any(path.rglob("*.jsonl"))


def run() -> None:
    """Set up the store, ingest agent logs (or demo data), materialise the cost assets for
    every day with usage, and print the cost report and where its HTML version is."""
    from ingestion.sources import CLAUDE_CODE, CODEX
    from pipelines.cli.ingest import print_summary, run_source
    from pipelines.cli.output import OutputFormat
    from pipelines.cli.report import UsageGrouping, usage

    started = time.monotonic()
    with failures_reported():
        context = store()
        settings = context.settings
        claude_dir, codex_dir = settings.claude_dir.expanduser(), settings.codex_dir.expanduser()
        if not (_has_logs(claude_dir) or _has_logs(codex_dir)):
            from ingestion.demo.corpus import generate_corpus

            demo_root = settings.resolved_data_dir / "demo"
            if not _has_logs(demo_root):
                generate_corpus(demo_root, megabytes=5.0)
            console.print(
                f"no agent logs in {claude_dir} or {codex_dir}: using demo data in {demo_root}"
            )
            claude_dir, codex_dir = (
                demo_root / "claude" / "projects",
                demo_root / "codex" / "sessions",
            )
        summaries = []
        if claude_dir.is_dir():
            summaries.append(run_source(CLAUDE_CODE, claude_dir))
        if codex_dir.is_dir():
            summaries.append(run_source(CODEX, codex_dir))
    print_summary(summaries, time.monotonic() - started)
    usage(by=UsageGrouping.model, since=None, until=None, fmt=OutputFormat.table)
    with failures_reported():
        from pipelines.cli.materialize import DEFAULT_SELECTION, materialize_days

        success, _, checks = materialize_days(DEFAULT_SELECTION, None, None, context.url)
        failed = [f"{asset}.{check}" for asset, check, passed in checks if not passed]
        console.print(
            f"materialised the cost assets: {len(checks)} checks, "
            f"{len(failed)} failed {failed if failed else ''}"
        )
        if not success:
            raise CommandFailed("materialisation failed: see `tally materialize`")
        from pipelines.cli.report import cost_columns, cost_rows, write_html_report

        rows = cost_rows(settings, "day", "auto", None, None)
        render(
            rows, OutputFormat.table, title="cost by day (auto)", columns=cost_columns("day", rows)
        )
        path = write_html_report(settings, "auto", None, None, None)
    console.print(f"HTML cost report: {path}")
