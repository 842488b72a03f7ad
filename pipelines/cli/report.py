"""`tally report`: usage from the canonical store; costs and attribution from the warehouse."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from pipelines.cli.context import CommandFailed, StoreContext, err, failures_reported, store
from pipelines.cli.output import OutputFormat, output_path, render, written_to

if TYPE_CHECKING:
    from assets.pricing.catalog import PriceOverride
    from ingestion.reports.costs import LiveDays
    from ingestion.reports.costs import WeekStart as WeekStartDay
    from ingestion.reports.freshness import Staleness
    from ingestion.reports.session_filter import SessionFilter
    from ingestion.settings import TallySettings
    from ingestion.warehouse.base import Warehouse
    from pipelines.cli.background import Background

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


def parse_window(since: str | None, until: str | None) -> tuple[date | None, date | None]:
    """--since and --until as days; a window that ends before it starts is refused, as the
    API refuses it, rather than reported as empty."""
    since_day, until_day = parse_day(since), parse_day(until)
    if since_day is not None and until_day is not None and until_day < since_day:
        raise typer.BadParameter(f"--until {until_day} is before --since {since_day}")
    return since_day, until_day


SinceOption = typer.Option(None, "--since", help="First day (UTC), YYYY-MM-DD.")
UntilOption = typer.Option(None, "--until", help="Last day (UTC, inclusive), YYYY-MM-DD.")
FormatOption = typer.Option(OutputFormat.table, "--format", help="table, json or csv.")
RefreshOption = typer.Option(
    False, "--refresh", help="First read the agent logs' new lines, as `tally ingest all`."
)


CompanyOption = typer.Option(
    None, "--company", help="Only this company's usage (its slug); every company's by default."
)
ProjectOption = typer.Option(
    None, "--project", help="Only the requests of this project's sessions (as --by project "
    "shows it).",
)  # fmt: skip
AgentOption = typer.Option(
    None, "--agent", help="Only the requests of this agent's sessions (as --by agent shows it)."
)
SourceOption = typer.Option(
    None, "--source", help="Only this tool's requests: claude_code, codex, api, ..."
)


@app.command()
def usage(
    by: UsageGrouping = typer.Option(UsageGrouping.day, "--by", help="session, day or model."),
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    fmt: OutputFormat = FormatOption,
    refresh: bool = RefreshOption,
    company: str | None = CompanyOption,
    project: str | None = ProjectOption,
    agent: str | None = AgentOption,
    source: str | None = SourceOption,
) -> None:
    """Requests and tokens (input is uncached input; reasoning is part of output)."""
    import psycopg

    from ingestion.reports.session_filter import SessionFilter
    from ingestion.reports.usage import GROUP_KEYS, TOKEN_KEYS, usage_report

    since_day, until_day = parse_window(since, until)
    sessions = SessionFilter(project=project, agent=agent, source=source)
    with failures_reported():
        context = store()
        if refresh:
            from pipelines.cli.ingest import refresh_agent_logs

            refresh_agent_logs(context)
        company_id = company_named(context, company)
        with psycopg.connect(context.conninfo) as conn:
            rows = usage_report(conn, by.value, since_day, until_day, company_id=company_id,
                                sessions=sessions)  # fmt: skip
    columns = [*GROUP_KEYS[by.value], "requests", *TOKEN_KEYS, "first_at", "last_at"]
    narrowed = sessions.words()
    render(rows, fmt, title=f"token usage by {by.value}{f' ({narrowed})' if narrowed else ''}",
           columns=columns)  # fmt: skip
    if not rows:
        say_no_usage(fmt is OutputFormat.table, since_day, until_day, narrowed,
                     "the canonical store", "tally report costs --by project, --by agent and "
                     "--by source show the names")  # fmt: skip


class CostGrouping(StrEnum):
    day = "day"
    week = "week"
    month = "month"
    source = "source"
    project = "project"
    agent = "agent"
    session = "session"
    model = "model"
    block = "block"
    issue = "issue"
    goal = "goal"


class WeekStart(StrEnum):
    sunday = "sunday"
    monday = "monday"


class CostMode(StrEnum):
    auto = "auto"
    calculate = "calculate"
    display = "display"


class CostFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    html = "html"


# More days than this behind the warehouse, and the report says it is pricing them first.
LIVE_NOTICE_DAYS = 7


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
    output: str | None = typer.Option(
        None,
        "--output",
        help="Write the report to this file, or into this directory (an existing one, or a "
        "path ending in /).",
    ),
    live: bool = typer.Option(
        True,
        "--live/--warehouse-only",
        help="Price the days the warehouse has not caught up with from the canonical store, "
        "for this report only (nothing is written); --warehouse-only reports the warehouse as "
        "it is and warns. Costs by issue or goal always come from the warehouse.",
    ),
    refresh: bool = RefreshOption,
    company: str | None = CompanyOption,
    project: str | None = ProjectOption,
    agent: str | None = AgentOption,
    source: str | None = SourceOption,
    week_start: WeekStart = typer.Option(
        WeekStart.sunday, "--week-start", help="The day --by week starts on (ISO: monday)."
    ),
) -> None:
    """Costs from the warehouse rollups; days it is behind on are priced live."""
    from ingestion.reports.session_filter import SessionFilter

    since_day, until_day = parse_window(since, until)
    sessions = SessionFilter(project=project, agent=agent, source=source)
    if by is CostGrouping.block and (project or agent):
        raise typer.BadParameter(
            "billing blocks are a subscription's windows, which every project and agent share: "
            "narrow them by --source, not --project or --agent",
            param_hint="'--by block'",
        )
    with failures_reported():
        context = store()  # the freshness check reads the canonical store
        company_id = company_named(context, company)
        overrides = None
        if refresh:
            with _refreshing(context) as refreshed:
                warehouse, overrides = _prepare_while_refreshing(context, live)
                refreshed.wait()
        else:
            from ingestion.warehouse.base import open_warehouse

            warehouse = open_warehouse(context.settings.resolved_warehouse_url)
        with warehouse.held():  # one connection for the freshness check and the report
            overlay, staleness = _cost_report(context, warehouse, by, mode, fmt, since_day,
                                              until_day, output, live, overrides,
                                              company_id, sessions,
                                              week_start.value)  # fmt: skip
    if staleness is not None and overlay is not None:
        err.print(f"note: {staleness.priced_live()}")
    elif staleness is not None:
        err.print(f"[yellow]warning:[/] {staleness.advice()}")
    warn_of_usage_outside_partitions(context, since_day, until_day)


def company_named(context: StoreContext, slug: str | None) -> int | None:
    """The id of `--company`'s company (None: every company); fails naming the store's."""
    if slug is None:
        return None
    import psycopg

    with psycopg.connect(context.conninfo) as conn:
        rows = conn.execute("SELECT id, slug FROM companies ORDER BY slug").fetchall()
    for company_id, known in rows:
        if known == slug:
            return int(company_id)
    names = ", ".join(known for _, known in rows) or "none"
    raise CommandFailed(f"no company {slug!r} (the store holds: {names})")


def note_companies(context: StoreContext, warehouse: Warehouse, since: date | None,
                    until: date | None, live: LiveDays | None) -> None:  # fmt: skip
    """Say when a report of every company adds up several: `--by project` once merged two
    companies' projects of one name without a word."""
    import psycopg

    from ingestion.reports.costs import companies_in_window

    ids = companies_in_window(warehouse, since, until, live)
    if len(ids) < 2:
        return
    with psycopg.connect(context.conninfo) as conn:
        slugs = [row[0] for row in conn.execute(
            "SELECT slug FROM companies WHERE id = ANY(%s) ORDER BY slug", (ids,)
        ).fetchall()]  # fmt: skip
    err.print(f"note: these rows add up {len(ids)} companies ({', '.join(slugs)}); "
              "--company COMPANY reports one")  # fmt: skip


def window_words(since: date | None, until: date | None) -> str:
    """The window, as words that precede what was looked in: "from D1 to D2 "."""
    return "".join(f"{word} {day} " for word, day in (("from", since), ("to", until)) if day)


def warn_of_usage_outside_partitions(
    context: StoreContext, since: date | None, until: date | None
) -> None:
    """Name the usage of the window that no report from the warehouse can hold."""
    from ingestion.reports.freshness import usage_outside_partitions
    from ingestion.store import CanonicalStore

    with failures_reported():
        outside = usage_outside_partitions(context.settings, CanonicalStore(context.url),
                                           since, until)  # fmt: skip
    if outside is not None:
        err.print(f"[yellow]warning:[/] {outside.advice()}")


def _refreshing(context: StoreContext) -> AbstractContextManager[Background]:
    """`tally ingest all` in a child process while the block runs."""
    from pipelines.cli.background import in_background
    from pipelines.cli.ingest import refresh_agent_logs

    return in_background(lambda: refresh_agent_logs(context), name="the refresh")


def _prepare_while_refreshing(
    context: StoreContext, live: bool
) -> tuple[Warehouse, list[PriceOverride] | None]:
    """The warehouse, and what else the report needs that does not depend on the new lines,
    prepared after the fork so that it happens on the other core: polars and DuckDB, the
    tables checked and the file released (a long refresh must not keep a materialisation
    from writing); for live pricing (new lines almost always leave a day to price), the
    pricing code, genai-prices' price data and the price overrides, whose read also opens
    the way the store's usage is read. Left until after the refresh, these took about 65 ms
    of a one-second report (medians of 10 alternating runs)."""
    from ingestion.warehouse.base import open_warehouse
    from schemas.warehouse import COST_DAILY, USAGE_PRICED

    warehouse = open_warehouse(context.settings.resolved_warehouse_url)
    with warehouse.held():
        warehouse.ensure_table(COST_DAILY)
        warehouse.ensure_table(USAGE_PRICED)  # the freshness check reads it
    if not live:
        return warehouse, None
    from assets.pricing.catalog import load_price_data, stored_overrides
    from ingestion.store import CanonicalStore

    load_price_data()
    return warehouse, stored_overrides(CanonicalStore(context.url))


def _cost_report(
    context: StoreContext,
    warehouse: Warehouse,
    by: CostGrouping,
    mode: CostMode,
    fmt: CostFormat,
    since_day: date | None,
    until_day: date | None,
    output: str | None,
    live: bool,
    overrides: list[PriceOverride] | None = None,
    company_id: int | None = None,
    sessions: SessionFilter | None = None,
    week_start: WeekStartDay = "sunday",
) -> tuple[LiveDays | None, Staleness | None]:
    overlay: LiveDays | None = None
    by_work_item = by in (CostGrouping.issue, CostGrouping.goal)
    staleness = warehouse_staleness(context, since_day, until_day, attribution=by_work_item,
                                    warehouse=warehouse)  # fmt: skip
    if live and staleness is not None and not by_work_item:
        # billing blocks and the HTML page read priced requests; the rest the rollup
        requests = by is CostGrouping.block or fmt is CostFormat.html
        overlay = priced_live(context, staleness, keep_priced=requests, overrides=overrides)
    if company_id is None:
        note_companies(context, warehouse, since_day, until_day, overlay)
    if fmt is CostFormat.html:
        path = write_html_report(context.settings, mode.value, since_day, until_day, output,
                                 overlay, warehouse=warehouse, company_id=company_id,
                                 sessions=sessions)  # fmt: skip
        typer.echo(str(path))
    else:
        rows = cost_rows(context.settings, by.value, mode.value, since_day, until_day, overlay,
                         warehouse=warehouse, company_id=company_id,
                         sessions=sessions, week_start=week_start)  # fmt: skip
        suffix = "txt" if fmt is CostFormat.table else fmt.value
        narrowed = sessions.words() if sessions else ""
        with written_to(output_path(output, f"costs.{suffix}")) if output else nullcontext():
            render(rows, OutputFormat(fmt.value),
                   title=f"cost by {by.value} ({', '.join(filter(None, [mode.value, narrowed]))})",
                   columns=cost_columns(by.value, rows))  # fmt: skip
            if fmt is CostFormat.table and not rows:
                say_no_usage(True, since_day, until_day, narrowed, COSTS_LOOKED_IN, COSTS_NAMES)
        if not rows and fmt is not CostFormat.table:
            say_no_usage(False, since_day, until_day, narrowed, COSTS_LOOKED_IN, COSTS_NAMES)
    return overlay, staleness


def priced_live(context: StoreContext, staleness: Staleness, *, keep_priced: bool,
                overrides: list[PriceOverride] | None = None) -> LiveDays:  # fmt: skip
    """The days the warehouse is behind on, priced from the canonical store for this report
    alone (`keep_priced`: with their priced requests, not only the daily rollup)."""
    from assets.costs.live import live_days
    from ingestion.store import CanonicalStore

    if len(staleness.days) > LIVE_NOTICE_DAYS:  # say why the wait, before it
        err.print(f"pricing {staleness.span()} from the canonical store ...")
    return live_days(CanonicalStore(context.url), staleness.days,
                     context.settings.subscription_source_set, keep_priced=keep_priced,
                     overrides=overrides, requests_by_day=staleness.requests)  # fmt: skip


COSTS_LOOKED_IN = "the warehouse or the canonical store"
COSTS_NAMES = (
    "`--by project`, `--by agent` and `--by session` show the names and sources reports use"
)


def say_no_usage(table: bool, since: date | None, until: date | None, narrowed: str,
                 looked_in: str, names: str) -> None:  # fmt: skip
    """Say that a report found nothing: under its table, or, when stdout holds JSON or CSV
    rows, as a note on stderr when the report was narrowed (by a name spelt otherwise than
    reports show it, most likely: `names` says where they are)."""
    if not table and not narrowed:
        return  # an empty list says it
    said = f"no usage {f'of {narrowed} ' if narrowed else ''}{window_words(since, until)}"
    said += f"in {looked_in}" + (f"; {names}" if narrowed else "")
    if table:
        typer.echo(said)
    else:
        err.print(f"note: {said}")


def warehouse_staleness(
    context: StoreContext,
    since: date | None,
    until: date | None,
    *,
    attribution: bool = False,
    warehouse: Warehouse | None = None,
) -> Staleness | None:
    """Days of the report's window, within the daily partitions, whose costs (or, with
    `attribution`, whose attributions, by this version of the engine) the warehouse has not
    caught up with."""
    from ingestion.reports.freshness import stale_report_days
    from ingestion.store import CanonicalStore
    from ingestion.warehouse.base import open_warehouse

    engine_version = None
    if attribution:  # the engine's module is imported only by reports that need it
        from assets.attribution.engine import ENGINE_VERSION as engine_version
    warehouse = warehouse or open_warehouse(context.settings.resolved_warehouse_url)
    return stale_report_days(context.settings, CanonicalStore(context.url), warehouse, since,
                             until, attribution=attribution,
                             engine_version=engine_version)  # fmt: skip


def cost_rows(
    settings: TallySettings,
    by: str,
    mode: str,
    since: date | None,
    until: date | None,
    live: LiveDays | None = None,
    *,
    warehouse: Warehouse | None = None,
    company_id: int | None = None,
    sessions: SessionFilter | None = None,
    week_start: WeekStartDay = "sunday",
) -> list[dict[str, Any]]:
    """The rows of `tally report costs --by BY`; `sessions` narrows them (billing blocks by
    source only: see `costs`); weeks start on `week_start`."""
    from datetime import UTC, datetime

    from ingestion.reports.costs import cost_report
    from ingestion.reports.session_filter import SessionFilter
    from ingestion.warehouse.base import open_warehouse

    warehouse = warehouse or open_warehouse(settings.resolved_warehouse_url)
    narrowed = (sessions or SessionFilter()).params()
    if by == "block":
        from ingestion.reports.blocks import billing_blocks  # numpy: only blocks need it

        now = datetime.now(UTC)
        blocks = billing_blocks(warehouse, mode, since, until, live=live,  # type: ignore[arg-type]
                                company_id=company_id, source=narrowed["source"])  # fmt: skip
        return [b.as_row(now) for b in blocks]
    if by in ("issue", "goal"):
        from ingestion.reports.attribution import cost_by_work_item

        return cost_by_work_item(warehouse, by, mode, since, until,  # type: ignore[arg-type]
                                 company_id, **narrowed)  # fmt: skip
    rows = cost_report(warehouse, by, mode, since, until, live=live,  # type: ignore[arg-type]
                       company_id=company_id, week_start=week_start, **narrowed)  # fmt: skip
    if by in ("project", "agent"):
        from ingestion.reports.attribution import attributed_share_by

        shares = attributed_share_by(warehouse, by, since, until,  # type: ignore[arg-type]
                                     company_id, **narrowed)  # fmt: skip
        for row in rows:
            row["attributed_share"] = shares.get(row[by])
    return rows


def cost_columns(by: str, rows: list[dict[str, Any]]) -> list[str]:
    if by == "block":
        return ["source", "block_start", "block_end", "active", "requests", "tokens", "cost_usd",
                "cost_per_hour", "projected_cost_usd", "models"]  # fmt: skip
    from ingestion.reports.costs import GROUPS, TOKEN_KEYS

    if by in ("issue", "goal"):
        from ingestion.reports.attribution import ISSUE_KEYS, SHARE_KEYS

        keys = list(ISSUE_KEYS) if by == "issue" else ["goal", "issues"]
        return [*keys, "requests", *TOKEN_KEYS, "cost_usd", "sessions", *SHARE_KEYS]
    key = GROUPS[by][1]
    group = [key, "source", "project", "agent"] if by == "session" else [key]
    shares = ["attributed_share"] if by in ("project", "agent") else []
    return [*group, "requests", *TOKEN_KEYS, "cost_usd", "billed_cost_usd",
            "notional_cost_usd", "pricing_status", *shares, "first_at", "last_at"]  # fmt: skip


class AttributionView(StrEnum):
    summary = "summary"
    session = "session"
    event = "event"


@app.command()
def attribution(
    by: AttributionView = typer.Option(
        AttributionView.summary,
        "--by",
        help="summary: shares by signal and reason, median cost per completed issue; "
        "session: the largest unattributed sessions and why; event: every usage event with "
        "its decision (for audits).",
    ),
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    mode: CostMode = typer.Option(CostMode.auto, "--mode", help="auto, calculate or display."),
    fmt: OutputFormat = FormatOption,
    limit: int = typer.Option(20, "--limit", min=1, help="Sessions listed by --by session."),
    company: str | None = CompanyOption,
    project: str | None = ProjectOption,
    agent: str | None = AgentOption,
    source: str | None = SourceOption,
) -> None:
    """How much usage the attribution engine gave to work items, how, and what it could
    not (from the warehouse: run `tally materialize` after ingesting)."""
    from ingestion.reports import attribution as reports
    from ingestion.reports.session_filter import SessionFilter
    from ingestion.warehouse.base import open_warehouse

    since_day, until_day = parse_window(since, until)
    sessions = SessionFilter(project=project, agent=agent, source=source).params()
    with failures_reported():
        context = store()  # the freshness check reads the canonical store
        company_id = company_named(context, company)
        staleness = warehouse_staleness(context, since_day, until_day, attribution=True)
        warehouse = open_warehouse(context.settings.resolved_warehouse_url)
        if by is AttributionView.event:
            rows = reports.attributed_events(warehouse, mode.value, since_day, until_day,
                                             company_id, **sessions)  # fmt: skip
            render(rows, fmt, title="usage events and their attribution",
                   columns=reports.EVENT_KEYS)  # fmt: skip
        elif by is AttributionView.session:
            rows = reports.coverage_gap(warehouse, mode.value, since_day, until_day, limit,
                                        company_id, **sessions)  # fmt: skip
            render(rows, fmt, title="largest unattributed sessions", columns=reports.GAP_KEYS)
            if fmt is OutputFormat.table and not rows:
                typer.echo("no unattributed usage in the window")
        else:
            render_coverage(reports.coverage(warehouse, mode.value, since_day, until_day,
                                             company_id, **sessions), fmt)  # fmt: skip
    if staleness is not None:
        err.print(f"[yellow]warning:[/] {staleness.advice()}")
    warn_of_usage_outside_partitions(context, since_day, until_day)


def render_coverage(summary: dict[str, Any], fmt: OutputFormat) -> None:
    import orjson

    if fmt is OutputFormat.json:
        sys.stdout.write(orjson.dumps(summary, default=str, option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
        return
    render(summary["rows"], fmt, title="attribution coverage (shares of tokens and cost)",
           columns=["signal", "confidence", "reason", "requests", "sessions", "cost_usd",
                    "token_share", "cost_share"])  # fmt: skip
    if fmt is OutputFormat.table and not summary["rows"]:
        typer.echo("no attributed usage in the window (`tally materialize` attributes it)")
    elif fmt is OutputFormat.table:
        share, median = summary.get("token_share", {}), summary["median_cost_per_completed_issue"]
        typer.echo(
            f"attributed {share.get('attributed', 0):.1%} of tokens, ambiguous "
            f"{share.get('ambiguous', 0):.1%}, unattributed {share.get('unattributed', 0):.1%}; "
            + (f"median cost per completed issue ${median:,.4f} over "
               f"{summary['completed_issues']} issues" if median is not None
               else "no issue completed in the window")
        )  # fmt: skip


def write_html_report(
    settings: TallySettings,
    mode: str,
    since: date | None,
    until: date | None,
    output: str | None,
    live: LiveDays | None = None,
    *,
    warehouse: Warehouse | None = None,
    company_id: int | None = None,
    sessions: SessionFilter | None = None,
) -> Path:
    from datetime import UTC, datetime

    from ingestion.reports.costs import cost_report, daily_cost_by_model, unpriced_usage
    from ingestion.reports.html import render_report
    from ingestion.reports.session_filter import SessionFilter
    from ingestion.warehouse.base import open_warehouse

    store = warehouse or open_warehouse(settings.resolved_warehouse_url)
    sessions = sessions or SessionFilter()
    narrowed = sessions.params()

    def rows_by(grouping: str) -> list[dict[str, Any]]:
        return cost_report(store, grouping, mode, since, until,  # type: ignore[arg-type]
                           live=live, company_id=company_id, **narrowed)  # fmt: skip

    daily_by_model = daily_cost_by_model(store, mode, since, until,  # type: ignore[arg-type]
                                         live, company_id, **narrowed)  # fmt: skip
    page = render_report(
        title=f"tally cost report: {sessions.words()}" if sessions.words() else "tally cost report",
        mode=mode,
        daily_by_model=daily_by_model,
        projects=rows_by("project"),
        sessions=rows_by("session"),
        sources=rows_by("source"),
        unpriced=unpriced_usage(store, since, until, live, company_id, **narrowed),
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    path = (
        output_path(output, "costs.html")
        if output
        else settings.resolved_data_dir / "reports" / "costs.html"
    )
    with written_to(path):
        sys.stdout.write(page)
    return path.resolve()
