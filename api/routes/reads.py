"""Cost reads from the warehouse rollups, scoped to the caller's company (agent keys: to
their own agent)."""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict

from api.crud import EntityId, fetch
from api.decimals import FixedDecimal, fixed_point_rows
from api.deps import Reader, require, state
from api.errors import error_responses, forbidden, invalid, not_found
from api.writes import Directory
from ingestion.keys import Principal
from ingestion.warehouse.base import Warehouse

router = APIRouter(prefix="/v1", tags=["reads"])
# Days of the requested window the warehouse has not caught up with (comma-separated ISO
# dates), as `tally report costs --warehouse-only` warns; absent when it is up to date.
STALE_DAYS_HEADER = "X-Tally-Stale-Days"
OUTSIDE_PARTITIONS_HEADER = "X-Tally-Days-Outside-Partitions"
GroupBy = Literal[
    "day", "week", "month", "source", "project", "agent", "session", "model", "issue", "goal"
]


class UsageTotals(BaseModel):
    """The usage contract's counts."""

    requests: int
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cache_read_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int


class CostRow(UsageTotals):
    """A row of `GET /v1/costs`: the grouping key (one of `day`, `week`, `month`, `source`,
    `project`, `agent`, `session_id` + `source`, `model`, or the issue keys), the usage
    contract's token keys, and costs as decimal strings."""

    model_config = ConfigDict(extra="allow")
    cost_usd: FixedDecimal | None


class IssueCost(UsageTotals):
    issue_external_id: str | None
    issue_number: int | None
    issue_identifier: str | None
    issue_title: str | None
    issue_status: str | None
    project: str | None
    goal: str | None
    cost_usd: FixedDecimal
    sessions: int
    share_explicit: float
    share_single_in_progress: float
    share_session_recent_touch: float
    share_session_commit: float
    first_day: date
    last_day: date


class BudgetStatus(BaseModel):
    policy_id: int
    metric: str
    window_kind: str
    window_start: str | None
    window_end: str | None
    amount: FixedDecimal
    # usd: billed (nothing for usage a subscription covers); notional_spent: at API prices
    spent: FixedDecimal
    notional_spent: FixedDecimal | None
    percent: float
    status: Literal["ok", "warning", "exceeded"]
    hard_stop: bool
    projected_exhaustion_at: str | None


@router.get("/costs", response_model=list[CostRow], responses=error_responses(401, 403, 422, 503))
def costs(
    request: Request,
    response: Response,
    caller: Reader,
    group_by: GroupBy = "day",
    since: date | None = None,
    until: date | None = None,
    mode: Literal["auto", "calculate", "display"] = "auto",
    project: Annotated[str | None, Query(max_length=4096)] = None,
    agent: Annotated[str | None, Query(max_length=300)] = None,
    source: Annotated[str | None, Query(max_length=100)] = None,
    week_start: Literal["sunday", "monday"] = "sunday",
) -> Any:
    """Cost and tokens grouped by day, week, month, source, project, agent, session, model (from
    `cost_daily`) or by issue and goal (from `attribution_daily`), for UTC days `since` to
    `until` inclusive; `project`, `agent` and `source` keep only the requests of that
    project's, agent's or tool's sessions. Agent keys see their own agent's usage only. The
    rows are the warehouse's, as last materialised; the `X-Tally-Stale-Days` header lists the
    days of the window it has not caught up with, `X-Tally-Days-Outside-Partitions` those with
    usage no daily partition holds (before the first, or after today), which the rows leave
    out."""
    from ingestion.reports.attribution import cost_by_work_item
    from ingestion.reports.costs import cost_report

    if since and until and until < since:
        raise invalid("until is before since", ["query", "until"])
    warehouse = state(request).warehouse()
    if caller.role == "agent":
        with state(request).pool.connection() as conn:
            row = conn.execute(
                "SELECT name FROM agents WHERE id = %s", (caller.agent_id,)
            ).fetchone()
        own = row[0] if row else None
        if agent is not None and agent != own:
            raise forbidden("an agent key reads its own agent's costs only")
        agent = own
        if group_by in ("issue", "goal"):
            raise forbidden("costs by issue or goal span agents: use a board or service key")
    by_work_item = group_by in ("issue", "goal")
    with warehouse.held():  # one connection for the freshness check and the rows
        stale = stale_days(request, warehouse, since, until, attribution=by_work_item)
        if stale:
            response.headers[STALE_DAYS_HEADER] = ",".join(day.isoformat() for day in stale)
        outside = days_outside_partitions(request, since, until)
        if outside:
            response.headers[OUTSIDE_PARTITIONS_HEADER] = ",".join(d.isoformat() for d in outside)
        if by_work_item:
            return fixed_point_rows(cost_by_work_item(
                warehouse, group_by, mode, since, until, caller.company_id, project=project,
                agent=agent, source=source))  # fmt: skip
        return fixed_point_rows(cost_report(
            warehouse, group_by, mode, since, until, company_id=caller.company_id, agent=agent,
            project=project, source=source, week_start=week_start))  # fmt: skip


def stale_days(
    request: Request,
    warehouse: Warehouse,
    since: date | None,
    until: date | None,
    *,
    attribution: bool,
) -> list[date]:
    """What the CLI's cost reports warn of (`ingestion/reports/freshness.py`): a few rows of
    per-day totals, not a scan of the events. The engine's version lives with the assets,
    which the API does not import: attributions made by an older engine are not named."""
    from ingestion.reports.freshness import stale_report_days
    from ingestion.store import CanonicalStore

    api = state(request)
    store = CanonicalStore(api.database_url, connection=api.pool.connection)
    found = stale_report_days(api.settings, store, warehouse, since, until,
                              attribution=attribution)  # fmt: skip
    return found.days if found else []


def days_outside_partitions(request: Request, since: date | None, until: date | None
                            ) -> list[date]:  # fmt: skip
    """Days of the window with usage that no partition holds (before the first, or after
    today): never materialised, so never in the rows."""
    from ingestion.reports.freshness import usage_outside_partitions
    from ingestion.store import CanonicalStore

    api = state(request)
    store = CanonicalStore(api.database_url, connection=api.pool.connection)
    found = usage_outside_partitions(api.settings, store, since, until)
    return found.days if found else []


@router.get(
    "/issues/{issue}/cost",
    response_model=IssueCost,
    responses=error_responses(401, 403, 404, 422, 503),
)
async def issue_cost(
    request: Request,
    caller: Annotated[Principal, Depends(require("board", "service"))],
    issue: Annotated[
        str,
        Path(
            min_length=1,
            max_length=300,
            description="Issue id, upstream id or identifier (PAP-12).",
        ),
    ],
    response: Response,
    mode: Literal["auto", "calculate", "display"] = "auto",
) -> Any:
    """Everything attributed to one issue, with the share each signal decided, as last
    materialised: `X-Tally-Stale-Days` lists the days whose attributions the warehouse has
    not caught up with (the issue's cost may change when they are materialised)."""
    from ingestion.reports.attribution import issue_cost as read

    def work() -> Any:
        with state(request).pool.connection() as conn:
            issue_id, problem = Directory(conn, caller).issue(issue)
        if issue_id is None:
            raise not_found(
                f"issue {issue!r}" if problem is None or "not an issue" in problem else problem
            )
        warehouse = state(request).warehouse()
        with warehouse.held():
            found = read(warehouse, caller.company_id, issue_id, mode)
            if found is None:
                raise not_found(f"attributed usage of issue {issue!r} (materialise first?)")
            stale = stale_days(request, warehouse, None, None, attribution=True)
        if stale:
            response.headers[STALE_DAYS_HEADER] = ",".join(day.isoformat() for day in stale)
        return found

    return await run_in_threadpool(work)


def _statuses(request: Request, policies: list[dict[str, Any]], warehouse: Warehouse,
              conn: Any) -> list[dict[str, Any]]:  # fmt: skip
    from ingestion.reports.budgets import policy_status

    covered = state(request).settings.subscription_source_set
    return [policy_status(conn, warehouse, policy, subscription_sources=covered)
            for policy in policies]  # fmt: skip


def _stale_header(request: Request, response: Response, warehouse: Warehouse,
                  policies: list[dict[str, Any]], found: list[dict[str, Any]]) -> None:  # fmt: skip
    """The days the warehouse has not caught up with, of the windows of the USD and token
    policies (runs are counted in PostgreSQL). Every window runs to now, so their union is
    the earliest one's: one check for the policies on issues (which read attributions) and
    one for the rest, however many policies there are."""
    earliest: dict[bool, date] = {}  # date.min: a lifetime window
    for policy, status in zip(policies, found, strict=True):
        if policy["metric"] == "runs":
            continue
        start = status["window_start"]  # ISO 8601, UTC; None: lifetime
        since = datetime.fromisoformat(start).date() if start else date.min
        on_issue = policy["scope_type"] == "issue"
        earliest[on_issue] = min(earliest.get(on_issue, date.max), since)
    stale: set[date] = set()
    for on_issue, since in earliest.items():
        stale |= set(stale_days(request, warehouse, None if since == date.min else since, None,
                                attribution=on_issue))  # fmt: skip
    if stale:
        response.headers[STALE_DAYS_HEADER] = ",".join(d.isoformat() for d in sorted(stale))


@router.get(
    "/budget-policies/{entity_id}/status",
    response_model=BudgetStatus,
    responses=error_responses(401, 403, 404, 422, 503),
)
def budget_status(request: Request, response: Response, entity_id: EntityId, caller: Reader) -> Any:
    """Spend in the policy's current window, the share of the budget, and when the budget
    runs out at the window's pace so far (null: not within the window). USD and tokens are
    the warehouse's, as last materialised: `X-Tally-Stale-Days` lists the days of the window
    it has not caught up with, whose spend the status leaves out. An agent key reads the
    policies that bind its agent: its own and the company's (a hook can stop its agent short
    of a hard stop)."""
    warehouse = state(request).warehouse()
    with warehouse.held():
        with state(request).pool.connection() as conn:
            policy = fetch(conn, "budget_policies", caller, entity_id, "budget policy")
            if caller.role == "agent" and not _binds(policy, caller):
                raise forbidden("an agent key reads the budget policies of its own agent and "
                                "of the company only")  # fmt: skip
            found = _statuses(request, [policy], warehouse, conn)
        # after the connection went back to the pool: the check takes one of its own
        _stale_header(request, response, warehouse, [policy], found)
    return found[0]


def _binds(policy: dict[str, Any], caller: Principal) -> bool:
    """Whether the policy holds the caller's agent back: its own, or the company's."""
    return policy["scope_type"] == "company" or (
        policy["scope_type"] == "agent" and policy["scope_id"] == caller.agent_id
    )


@router.get(
    "/budget-status",
    response_model=list[BudgetStatus],
    responses=error_responses(401, 403, 503),
)
def budget_statuses(request: Request, response: Response, caller: Reader) -> Any:
    """The status of every active budget policy of the company, by id; for an agent key,
    those that bind its agent (its own and the company's): what a hook checks before each
    prompt and tool call, without knowing the policies' ids."""
    warehouse = state(request).warehouse()
    with warehouse.held():
        with state(request).pool.connection() as conn:
            with conn.cursor(row_factory=dict_row) as cur:
                rows = cur.execute(
                    """SELECT * FROM budget_policies WHERE company_id = %s AND active
                       ORDER BY id""",
                    (caller.company_id,),
                ).fetchall()
            policies = [row for row in rows if caller.role != "agent" or _binds(row, caller)]
            found = _statuses(request, policies, warehouse, conn)
        _stale_header(request, response, warehouse, policies, found)
    return found
