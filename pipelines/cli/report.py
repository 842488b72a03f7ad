"""`tally report`: usage (and, later, costs) from the canonical store."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import typer

from pipelines.cli.context import failures_reported, store
from pipelines.cli.output import OutputFormat, render

app = typer.Typer(help="Reports.", no_args_is_help=True)


class UsageGrouping(StrEnum):
    session = "session"
    day = "day"
    model = "model"


def parse_day(value: str | None) -> date | None:
    """YYYY-MM-DD, or ccusage's YYYYMMDD."""
    if value is None:
        return None
    for pattern in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)")


SinceOption = typer.Option(None, "--since", help="First day (UTC), YYYY-MM-DD.")
UntilOption = typer.Option(None, "--until", help="Last day (UTC, inclusive), YYYY-MM-DD.")
FormatOption = typer.Option(OutputFormat.table, "--format", help="table, json or csv.")


@app.command()
def usage(
    by: UsageGrouping = typer.Option(UsageGrouping.day, "--by", help="session, day or model."),
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Requests and tokens (input is uncached input; reasoning is part of output)."""
    import psycopg

    from ingestion.reports.usage import GROUP_KEYS, TOKEN_KEYS, usage_report

    since_day, until_day = parse_day(since), parse_day(until)
    with failures_reported():
        context = store()
        with psycopg.connect(context.conninfo) as conn:
            rows = usage_report(conn, by.value, since_day, until_day)
    columns = [*GROUP_KEYS[by.value], "requests", *TOKEN_KEYS, "first_at", "last_at"]
    render(rows, fmt, title=f"token usage by {by.value}", columns=columns)
