"""`tally report reconcile`: an upstream's cost ledger (Paperclip's) beside tally's costs."""

from __future__ import annotations

from enum import StrEnum

import typer

from pipelines.cli.context import err, failures_reported, store
from pipelines.cli.output import OutputFormat, render
from pipelines.cli.report import (
    CompanyOption,
    CostMode,
    SinceOption,
    UntilOption,
    company_named,
    note_companies,
    parse_window,
    priced_live,
    warehouse_staleness,
    window_words,
)


class Reconciling(StrEnum):
    agent = "agent"
    day = "day"
    month = "month"


def reconcile(
    by: Reconciling = typer.Option(Reconciling.agent, "--by", help="How to group."),
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    mode: CostMode = typer.Option(
        CostMode.auto, "--mode", help="tally's cost: auto, calculate or display."
    ),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table, json, csv."),
    live: bool = typer.Option(
        True,
        "--live/--warehouse-only",
        help="Price the days the warehouse has not caught up with from the canonical store.",
    ),
    company: str | None = CompanyOption,
) -> None:
    """What the upstream's cost ledger (Paperclip's cost events) booked for each agent, day or
    month, beside tally's billed cost of the same agents' requests and the difference."""
    import psycopg

    from ingestion.reports.reconcile import (
        reconcile_columns,
        tally_costs,
        upstream_costs,
    )
    from ingestion.warehouse.base import open_warehouse

    since_day, until_day = parse_window(since, until)
    with failures_reported():
        context = store()
        company_id = company_named(context, company)
        with psycopg.connect(context.conninfo) as conn:
            upstream = upstream_costs(conn, by.value, since_day, until_day, company_id)
            ledger = conn.execute("SELECT EXISTS (SELECT 1 FROM cost_events)").fetchone()
        warehouse = open_warehouse(context.settings.resolved_warehouse_url)
        with warehouse.held():
            staleness = warehouse_staleness(context, since_day, until_day, warehouse=warehouse)
            overlay = None
            if live and staleness is not None:
                overlay = priced_live(context, staleness, keep_priced=False)
            computed = tally_costs(warehouse, by.value, mode.value, since_day, until_day,
                                   company_id, overlay)  # fmt: skip
            if company_id is None:  # two companies' agents of one name would add up
                note_companies(context, warehouse, since_day, until_day, overlay)
    from ingestion.reports.reconcile import reconcile as reconciled

    rows = reconciled(upstream, computed, by.value)
    render(rows, fmt, title=f"upstream ledger and tally by {by.value} ({mode.value})",
           columns=reconcile_columns(by.value))  # fmt: skip
    if not (ledger and ledger[0]):
        err.print("note: the store holds no upstream cost ledger: `tally ingest paperclip` "
                  "loads Paperclip's cost events")  # fmt: skip
    elif upstream.is_empty():
        err.print(f"note: the upstream ledger has no entries {window_words(since_day, until_day)}"
                  .rstrip())  # fmt: skip
    if staleness is not None and overlay is not None:
        err.print(f"note: {staleness.priced_live()}")
    elif staleness is not None:
        err.print(f"[yellow]warning:[/] {staleness.advice()}")
