"""Cost reports read from the warehouse rollups (`cost_daily`; billing blocks, read from
`usage_priced`, are in blocks.py). The keys of a row are the usage contract's plus
`cost_usd` (a decimal string in JSON) and `pricing_status` (`priced`, `partial`, `unpriced`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import polars as pl

from ingestion.warehouse.base import Warehouse
from schemas.warehouse import COST_DAILY, TOKEN_NAMES, USAGE_PRICED, WarehouseTable

Grouping = Literal["day", "week", "month", "source", "project", "agent", "session", "model"]
Mode = Literal["auto", "calculate", "display"]
MODE_COLUMN = {"auto": "cost_usd", "calculate": "computed_cost_usd", "display": "reported_cost_usd"}
TOKEN_KEYS = TOKEN_NAMES
GROUPS: dict[str, tuple[str, str]] = {
    # key: (SQL expression, output key)
    "day": ("day", "day"),
    # weeks start on Sunday, as `ccusage claude weekly`'s do (its all-tools `weekly`: Monday)
    "week": ("CAST(day - CAST(dayofweek(day) AS INTEGER) AS DATE)", "week"),
    "month": ("strftime(day, '%Y-%m')", "month"),
    "source": ("source", "source"),  # the tool: claude_code, codex, api, ...
    "project": ("project", "project"),
    "agent": ("agent", "agent"),
    "session": ("session_key", "session_id"),
    "model": ("model", "model"),
}


def billed_sum(cost: str) -> str:
    """The SQL sum of a cost column of `cost_daily` as billed: nothing for the usage a
    subscription covers."""
    return f"sum(CASE WHEN subscription_covered THEN 0 ELSE {cost} END)"


# Weeks that start on Monday (ISO weeks), for `week_start="monday"`.
MONDAY_WEEK = "CAST(day - CAST(isodow(day) - 1 AS INTEGER) AS DATE)"
WeekStart = Literal["sunday", "monday"]


def window_bounds(since: date | None, until: date | None) -> dict[str, date]:
    """$since and $until (inclusive days) of a report's window, open ends made explicit."""
    return {"since": since or date(1970, 1, 1), "until": until or date(9999, 12, 31)}


# What reports read of the priced requests of live days (billing blocks, unpriced usage):
# the other columns of `usage_priced` would more than double what such a report holds.
LIVE_PRICED_COLUMNS = ("day", "company_id", "source", "project", "agent", "occurred_at",
                       "provider", "model", *TOKEN_NAMES,
                       "computed_cost_usd", "reported_cost_usd", "cost_usd", "pricing_status",
                       "unpriced_reason")  # fmt: skip


@dataclass(frozen=True)
class LiveDays:
    """`usage_priced` and `cost_daily` rows computed from the canonical store for `days`,
    which the warehouse has not caught up with: a report reads these instead of the
    warehouse's rows of those days (a day with no rows here had its usage deleted)."""

    days: tuple[date, ...]
    # LIVE_PRICED_COLUMNS of `usage_priced` (or all); None: not kept (daily rollups only)
    usage_priced: pl.DataFrame | None
    cost_daily: pl.DataFrame

    def frame(self, table: WarehouseTable) -> pl.DataFrame:
        if table is COST_DAILY:
            return self.cost_daily
        if self.usage_priced is None:
            raise ValueError("these live days kept only their daily rollup, not usage_priced")
        return self.usage_priced


def rows_of(
    table: WarehouseTable, live: LiveDays | None
) -> tuple[str, dict[str, Any], dict[str, pl.DataFrame]]:
    """What a report reads as `table` (SQL, parameters, frames): the warehouse's rows, with
    the live days' rows swapped in."""
    if live is None or not live.days:
        return table.name, {}, {}
    frame = live.frame(table)
    columns = ", ".join(f'"{name}"' for name in frame.columns)  # those the live rows kept
    name = f"live_{table.name}"
    sql = f"""(SELECT {columns} FROM {table.name} WHERE NOT list_contains($live_days, day)
               UNION ALL SELECT {columns} FROM {name})"""
    return sql, {"live_days": list(live.days)}, {name: frame}


# One company's rows when `$company` is set, every company's otherwise.
ONE_COMPANY = "($company::BIGINT IS NULL OR company_id = $company)"
# The requests of the sessions of one project, agent or source, each where it is set.
OF_SESSIONS = """($project::VARCHAR IS NULL OR project = $project)
    AND ($agent::VARCHAR IS NULL OR agent = $agent)
    AND ($source::VARCHAR IS NULL OR source = $source)"""
# The rows of a report's window ($since to $until), company and sessions (`window_params`).
IN_WINDOW = f"day >= $since AND day <= $until AND {ONE_COMPANY} AND {OF_SESSIONS}"


def window_params(since: date | None, until: date | None, company_id: int | None = None, *,
                  project: str | None = None, agent: str | None = None,
                  source: str | None = None) -> dict[str, Any]:  # fmt: skip
    """The parameters of IN_WINDOW: `project`, `agent` and `source` keep only the requests
    of that project's, agent's or tool's sessions (the values reports show)."""
    return {**window_bounds(since, until), "company": company_id, "project": project,
            "agent": agent, "source": source}  # fmt: skip


def cost_report(
    warehouse: Warehouse,
    by: Grouping,
    mode: Mode = "auto",
    since: date | None = None,
    until: date | None = None,
    *,
    company_id: int | None = None,
    agent: str | None = None,
    project: str | None = None,
    source: str | None = None,
    live: LiveDays | None = None,
    week_start: WeekStart = "sunday",
) -> list[dict[str, Any]]:
    """Rows by `by`; `company_id`, `agent`, `project` and `source` narrow the rows that
    count; weeks start on `week_start` (`ccusage claude weekly`'s default is Sunday)."""
    expression, key = GROUPS[by]
    if by == "week" and week_start == "monday":
        expression = MONDAY_WEEK
    # a session's rows name its tool, and the project and agent it is linked to (as of its
    # latest day: a link made later reaches only the days materialised since)
    extra = (", source, arg_max(project, last_at) AS project, arg_max(agent, last_at) AS agent"
             if by == "session" else "")  # fmt: skip
    sums = ", ".join(f"CAST(sum({c}) AS BIGINT) AS {c}" for c in TOKEN_KEYS)
    cost = MODE_COLUMN[mode]
    warehouse.ensure_table(COST_DAILY)
    daily, live_params, frames = rows_of(COST_DAILY, live)
    frame = warehouse.query(
        f"""SELECT {expression} AS {key}{extra}, CAST(sum(requests) AS BIGINT) AS requests,
                   {sums}, sum({cost}) AS cost_usd,
                   {billed_sum(cost)} AS billed_cost_usd,
                   sum(notional_cost_usd) AS notional_cost_usd,
                   CAST(sum(unpriced_requests) AS BIGINT) AS unpriced_requests,
                   min(first_at) AS first_at, max(last_at) AS last_at
            FROM {daily}
            WHERE {IN_WINDOW}
            GROUP BY ALL
            ORDER BY {"cost_usd DESC" if by not in ("day", "week", "month") else "1"}""",
        {
            **window_params(since, until, company_id, project=project, agent=agent, source=source),
            **live_params,
        },
        frames,
    )
    rows = []
    for row in frame.iter_rows(named=True):
        unpriced = row.pop("unpriced_requests")
        row["pricing_status"] = (
            "priced" if not unpriced else "unpriced" if unpriced == row["requests"] else "partial"
        )
        if isinstance(row.get(key), date):
            row[key] = row[key].isoformat()
        row["first_at"] = _iso(row["first_at"])
        row["last_at"] = _iso(row["last_at"])
        rows.append(row)
    return rows


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def daily_cost_by_model(
    warehouse: Warehouse,
    mode: Mode,
    since: date | None,
    until: date | None,
    live: LiveDays | None = None,
    company_id: int | None = None,
    **sessions: str | None,
) -> list[dict[str, Any]]:
    """Cost by day and model; `sessions`: window_params' project, agent and source."""
    warehouse.ensure_table(COST_DAILY)
    daily, live_params, frames = rows_of(COST_DAILY, live)
    frame = warehouse.query(
        f"""SELECT day, model, sum({MODE_COLUMN[mode]}) AS cost_usd FROM {daily}
            WHERE {IN_WINDOW} GROUP BY ALL ORDER BY day, model""",
        {**window_params(since, until, company_id, **sessions), **live_params},
        frames,
    )
    return list(frame.iter_rows(named=True))


def unpriced_usage(
    warehouse: Warehouse,
    since: date | None,
    until: date | None,
    live: LiveDays | None = None,
    company_id: int | None = None,
    **sessions: str | None,
) -> list[dict[str, Any]]:
    """Unpriced requests by model and reason; `sessions`: window_params' project, agent and
    source."""
    warehouse.ensure_table(USAGE_PRICED)
    priced, live_params, frames = rows_of(USAGE_PRICED, live)
    frame = warehouse.query(
        f"""SELECT provider, model, unpriced_reason, count(*) AS requests,
                   CAST(sum(input_tokens + output_tokens + cache_read_tokens
                        + cache_write_5m_tokens + cache_write_1h_tokens) AS BIGINT) AS tokens
            FROM {priced}
            WHERE pricing_status = 'unpriced' AND {IN_WINDOW}
            GROUP BY ALL ORDER BY tokens DESC""",
        {**window_params(since, until, company_id, **sessions), **live_params},
        frames,
    )
    return list(frame.iter_rows(named=True))


def companies_in_window(warehouse: Warehouse, since: date | None, until: date | None,
                        live: LiveDays | None = None) -> list[int]:  # fmt: skip
    """The companies whose usage the window holds (a report of every company adds theirs)."""
    warehouse.ensure_table(COST_DAILY)
    daily, live_params, frames = rows_of(COST_DAILY, live)
    frame = warehouse.query(
        f"SELECT DISTINCT company_id FROM {daily} WHERE {IN_WINDOW} ORDER BY 1",
        {**window_params(since, until), **live_params},
        frames,
    )
    return [int(value) for value in frame["company_id"]]
