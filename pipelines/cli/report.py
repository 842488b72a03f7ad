"""`tally report`: usage (and, later, costs) from the canonical store."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from pipelines.cli.context import failures_reported, store
from pipelines.cli.output import OutputFormat, render

if TYPE_CHECKING:
    from ingestion.settings import TallySettings

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


class CostGrouping(StrEnum):
    day = "day"
    week = "week"
    month = "month"
    project = "project"
    agent = "agent"
    session = "session"
    model = "model"
    block = "block"


class CostMode(StrEnum):
    auto = "auto"
    calculate = "calculate"
    display = "display"


class CostFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    html = "html"


@app.command()
def costs(
    by: CostGrouping = typer.Option(CostGrouping.day, "--by", help="How to group."),
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    mode: CostMode = typer.Option(
        CostMode.auto,
        "--mode",
        help="auto: tool-reported cost where present, else computed; calculate: computed "
        "from prices; display: tool-reported only.",
    ),
    fmt: CostFormat = typer.Option(CostFormat.table, "--format", help="table, json, csv, html."),
    output: Path | None = typer.Option(None, "--output", help="Where the HTML report goes."),
) -> None:
    """Costs from the warehouse rollups (run `tally materialize` after ingesting)."""
    since_day, until_day = parse_day(since), parse_day(until)
    with failures_reported():
        context = store(migrate=False)
        if fmt is CostFormat.html:
            path = write_html_report(context.settings, mode.value, since_day, until_day, output)
            typer.echo(str(path))
            return
        rows = cost_rows(context.settings, by.value, mode.value, since_day, until_day)
    render(rows, OutputFormat(fmt.value), title=f"cost by {by.value} ({mode.value})",
           columns=cost_columns(by.value, rows))  # fmt: skip


def cost_rows(
    settings: TallySettings, by: str, mode: str, since: date | None, until: date | None
) -> list[dict[str, Any]]:
    from datetime import UTC, datetime

    from ingestion.reports.blocks import billing_blocks
    from ingestion.reports.costs import cost_report, priced_events
    from ingestion.warehouse.base import open_warehouse

    warehouse = open_warehouse(settings.resolved_warehouse_url)
    if by == "block":
        now = datetime.now(UTC)
        return [b.as_row(now) for b in billing_blocks(priced_events(warehouse, mode, since, until))]
    return cost_report(warehouse, by, mode, since, until)  # type: ignore[arg-type]


def cost_columns(by: str, rows: list[dict[str, Any]]) -> list[str]:
    if by == "block":
        return ["block_start", "block_end", "active", "requests", "tokens", "cost_usd",
                "cost_per_hour", "projected_cost_usd", "models"]  # fmt: skip
    from ingestion.reports.costs import GROUPS, TOKEN_KEYS

    key = GROUPS[by][1]
    group = [key, "source"] if by == "session" else [key]
    return [*group, "requests", *TOKEN_KEYS, "cost_usd", "billed_cost_usd",
            "notional_cost_usd", "pricing_status", "first_at", "last_at"]  # fmt: skip


def write_html_report(
    settings: TallySettings,
    mode: str,
    since: date | None,
    until: date | None,
    output: Path | None,
) -> Path:
    from datetime import UTC, datetime

    from ingestion.reports.costs import cost_report, daily_cost_by_model, unpriced_usage
    from ingestion.reports.html import render_report
    from ingestion.warehouse.base import open_warehouse

    warehouse = open_warehouse(settings.resolved_warehouse_url)
    page = render_report(
        title="tally cost report",
        mode=mode,
        daily_by_model=daily_cost_by_model(warehouse, mode, since, until),  # type: ignore[arg-type]
        projects=cost_report(warehouse, "project", mode, since, until),  # type: ignore[arg-type]
        sessions=cost_report(warehouse, "session", mode, since, until),  # type: ignore[arg-type]
        unpriced=unpriced_usage(warehouse, since, until),
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    path = (output or settings.resolved_data_dir / "reports" / "costs.html").expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path.resolve()
