"""Cost by work item and the attribution engine's coverage, from the warehouse
(`attribution_daily`, and `usage_attributed` for the event audit and the coverage gap).

Rows by issue carry the upstream's identifiers (`issue_external_id`: Paperclip issue id, Pigeon
card id; `issue_number`; `project`), the usage contract's keys, `cost_usd` (a decimal string in
JSON) and the share of the issue's cost each signal decided (`share_<signal>`; by tokens when
the cost is zero). A last row (`issue_external_id` null) holds what no issue was given, so the
rows add up to the window's total."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import polars as pl

from ingestion.reports.costs import (
    IN_WINDOW,
    MODE_COLUMN,
    OF_SESSIONS,
    ONE_COMPANY,
    TOKEN_KEYS,
    Mode,
    window_params,
)
from ingestion.warehouse.base import Warehouse
from schemas.warehouse import ATTRIBUTION_DAILY, USAGE_ATTRIBUTED

WorkGrouping = Literal["issue", "goal"]
SIGNALS = ("explicit", "single-in-progress", "session-recent-touch", "session-commit")
SHARE_KEYS = tuple(f"share_{s.replace('-', '_')}" for s in SIGNALS)
ISSUE_KEYS = ("issue_external_id", "issue_number", "issue_identifier", "issue_title",
              "issue_status", "project", "goal")  # fmt: skip
GAP_KEYS = ("source", "session_id", "project", "agent", "reason", "requests", "tokens",
            "cost_usd", "first_at", "last_at")  # fmt: skip
EVENT_KEYS = ("source", "session_id", "message_id", "request_id", "occurred_at",
              "issue_external_id", "issue_number", "project", "session_project", "signal",
              "confidence", "reason",
              "evidence", *TOKEN_KEYS, "cost_usd")  # fmt: skip


# The rows of the window that a report reads: a company's, an issue's, and those of the
# sessions of one project, agent or source (the session's, as every other grouping filters
# them).
SCOPE = f"""{IN_WINDOW}
    AND ($issue::BIGINT IS NULL OR issue_id = $issue)"""


def _scope(since: date | None, until: date | None, company_id: int | None,
           issue_id: int | None = None, project: str | None = None, agent: str | None = None,
           source: str | None = None) -> dict[str, Any]:  # fmt: skip
    return {**window_params(since, until, company_id, project=project, agent=agent,
                            source=source), "issue": issue_id}  # fmt: skip


def _daily(warehouse: Warehouse, mode: Mode, scope: dict[str, Any]) -> pl.DataFrame:
    warehouse.ensure_table(ATTRIBUTION_DAILY)
    return warehouse.query(
        f"SELECT *, {MODE_COLUMN[mode]} AS mode_cost FROM attribution_daily WHERE {SCOPE}",
        scope,
    )


def _shares(group: pl.DataFrame) -> dict[str, float]:
    cost = sum((v or Decimal(0) for v in group["mode_cost"]), Decimal(0))
    weight = "mode_cost" if cost > 0 else "tokens"
    total = float(group[weight].cast(pl.Float64).sum() or 0)
    by_signal = group.group_by("signal").agg(pl.col(weight).cast(pl.Float64).sum())
    found = dict(by_signal.iter_rows())
    return {key: round((found.get(signal) or 0) / total, 4) if total else 0.0
            for key, signal in zip(SHARE_KEYS, SIGNALS, strict=True)}  # fmt: skip


def _totals(group: pl.DataFrame, sessions: int) -> dict[str, Any]:
    return {
        "requests": int(group["requests"].sum()),
        **{key: int(group[key].sum()) for key in TOKEN_KEYS},
        "cost_usd": sum((v or Decimal(0) for v in group["mode_cost"]), Decimal(0)),
        "sessions": sessions,
    }


def _latest(group: pl.DataFrame) -> dict[str, Any]:
    """The issue as its latest day shows it: each day keeps the issue as it was when that day
    was materialised (an issue finished today is `in_progress` in yesterday's rows)."""
    return group.sort("day").row(-1, named=True)


def _sessions(warehouse: Warehouse, columns: list[str], scope: dict[str, Any]
              ) -> dict[tuple[Any, ...], int]:  # fmt: skip
    """Distinct (root) sessions of the window per value of `columns` (expressions over
    `usage_attributed`). The daily rollup counts a group's sessions per day, signal, project
    and agent: summed, a session was counted once for every day and every signal it was
    attributed by."""
    warehouse.ensure_table(USAGE_ATTRIBUTED)
    keys = "".join(f"{column} AS key_{n}, " for n, column in enumerate(columns))
    frame = warehouse.query(
        f"""SELECT {keys}count(DISTINCT root_session_key) AS sessions FROM usage_attributed
            WHERE {SCOPE} GROUP BY ALL""",
        scope,
    )
    return {row[:-1]: row[-1] for row in frame.iter_rows()}


def cost_by_work_item(warehouse: Warehouse, by: WorkGrouping, mode: Mode = "auto",
                      since: date | None = None, until: date | None = None,
                      company_id: int | None = None, *, project: str | None = None,
                      agent: str | None = None,
                      source: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """`project`, `agent`, `source`: only the requests of that project's, agent's or tool's
    sessions."""
    scope = _scope(since, until, company_id, project=project, agent=agent, source=source)
    daily = _daily(warehouse, mode, scope)
    if daily.is_empty():
        return []
    attributed = daily.filter(pl.col("issue_id").is_not_null())
    rows: list[dict[str, Any]] = []
    # (attributed, issue or goal) -> distinct sessions
    sessions = _sessions(warehouse, ["issue_id IS NOT NULL", "issue_id" if by == "issue"
                                     else "CASE WHEN issue_id IS NOT NULL THEN goal END"],
                         scope)  # fmt: skip
    if by == "issue":
        for (issue_id,), group in attributed.group_by(["issue_id"]):
            latest = _latest(group)
            rows.append({
                "issue_external_id": latest["issue_external_id"],
                "issue_number": latest["issue_number"],
                "issue_identifier": latest["issue_identifier"],
                "issue_title": latest["issue_title"], "issue_status": latest["issue_status"],
                "project": latest["issue_project"], "goal": latest["goal"],
                **_totals(group, sessions.get((True, issue_id), 0)), **_shares(group),
            })  # fmt: skip
    else:
        for (goal,), group in attributed.group_by(["goal"]):
            rows.append({"goal": goal, "issues": group["issue_id"].n_unique(),
                         **_totals(group, sessions.get((True, goal), 0)),
                         **_shares(group)})  # fmt: skip
    rows.sort(key=lambda row: row["cost_usd"], reverse=True)
    rest = daily.filter(pl.col("issue_id").is_null())
    if not rest.is_empty():
        empty = dict.fromkeys(ISSUE_KEYS if by == "issue" else ("goal", "issues"))
        rows.append({**empty, "issue_title" if by == "issue" else "goal": "(unattributed)",
                     **_totals(rest, sessions.get((False, None), 0)),
                     **dict.fromkeys(SHARE_KEYS, 0.0)})  # fmt: skip
    return rows


def coverage(warehouse: Warehouse, mode: Mode = "auto", since: date | None = None,
             until: date | None = None, company_id: int | None = None,
             **sessions: str | None) -> dict[str, Any]:  # fmt: skip
    """Shares of tokens and cost by signal and reason, and the median cost of an issue
    completed in the window (its whole attributed cost, whatever day it was spent);
    `sessions`: window_params' project, agent and source."""
    scope = _scope(since, until, company_id, **sessions)
    daily = _daily(warehouse, mode, scope)
    if daily.is_empty():
        return {"rows": [], "median_cost_per_completed_issue": None, "completed_issues": 0}
    tokens_total = float(daily["tokens"].sum() or 0)
    cost_total = sum((v or Decimal(0) for v in daily["mode_cost"]), Decimal(0))
    rows = []
    counted = _sessions(warehouse, ["signal", "confidence", "reason"], scope)
    grouped = daily.group_by("signal", "confidence", "reason", maintain_order=True)
    for (signal, confidence, reason), group in grouped:
        totals = _totals(group, counted.get((signal, confidence, reason), 0))
        tokens = sum(totals[k] for k in TOKEN_KEYS if k != "reasoning_tokens")
        rows.append({
            "signal": signal, "confidence": confidence, "reason": reason, **totals,
            "token_share": round(tokens / tokens_total, 4) if tokens_total else 0.0,
            "cost_share": round(float(totals["cost_usd"] / cost_total), 4) if cost_total else 0.0,
        })  # fmt: skip
    rows.sort(key=lambda r: (r["signal"] == "unattributed", -r["token_share"]))
    share = {
        "attributed": sum(r["token_share"] for r in rows if r["signal"] != "unattributed"),
        "ambiguous": sum(r["token_share"] for r in rows if r["reason"] == "ambiguous"),
        "unattributed": sum(r["token_share"] for r in rows if r["signal"] == "unattributed"),
    }
    completed = _completed_issue_costs(warehouse, mode, since, until, company_id, **sessions)
    median = statistics.median(completed) if completed else None
    return {"rows": rows, "token_share": {k: round(v, 4) for k, v in share.items()},
            "median_cost_per_completed_issue": median,
            "completed_issues": len(completed)}  # fmt: skip


def _completed_issue_costs(warehouse: Warehouse, mode: Mode, since: date | None,
                           until: date | None, company_id: int | None,
                           **sessions: str | None) -> list[Decimal]:  # fmt: skip
    # whether an issue is done, and since when, is what its latest day says (see _latest);
    # its cost is that of every day
    frame = warehouse.query(
        f"""SELECT cost FROM (
                SELECT issue_id, sum({MODE_COLUMN[mode]}) AS cost,
                       arg_max(issue_status, day) AS status,
                       arg_max(issue_completed_at, day) AS completed_at
                FROM attribution_daily
                WHERE issue_id IS NOT NULL AND {ONE_COMPANY} AND {OF_SESSIONS}
                GROUP BY issue_id)
            WHERE status = 'done' AND CAST(completed_at AS DATE) >= $since
              AND CAST(completed_at AS DATE) <= $until""",
        {**window_params(since, until, company_id, **sessions)},
    )
    return sorted(value or Decimal(0) for value in frame["cost"])


def coverage_gap(warehouse: Warehouse, mode: Mode = "auto", since: date | None = None,
                 until: date | None = None, limit: int = 20, company_id: int | None = None,
                 **sessions: str | None) -> list[dict[str, Any]]:  # fmt: skip
    """The largest unattributed sessions, with the reason that left most of their cost
    unattributed; `sessions`: window_params' project, agent and source."""
    warehouse.ensure_table(USAGE_ATTRIBUTED)
    frame = warehouse.query(
        f"""SELECT source, root_session_key AS session_id, project, agent,
                   arg_max(reason, {MODE_COLUMN[mode]}) AS reason,
                   count(*) AS requests,
                   CAST(sum(input_tokens + output_tokens + cache_read_tokens
                        + cache_write_5m_tokens + cache_write_1h_tokens) AS BIGINT) AS tokens,
                   sum({MODE_COLUMN[mode]}) AS cost_usd,
                   min(occurred_at) AS first_at, max(occurred_at) AS last_at
            FROM usage_attributed
            WHERE signal = 'unattributed' AND {SCOPE}
            GROUP BY ALL ORDER BY cost_usd DESC NULLS LAST, tokens DESC LIMIT {int(limit)}""",
        _scope(since, until, company_id, **sessions),
    )
    return [_iso_times(row) for row in frame.iter_rows(named=True)]


def attributed_events(warehouse: Warehouse, mode: Mode = "auto", since: date | None = None,
                      until: date | None = None, company_id: int | None = None,
                      **sessions: str | None) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Every usage event with its decision, for outside audits of the engine, read in batches
    (an export of millions of events must not hold them all); `sessions`: window_params'
    project, agent and source."""
    warehouse.ensure_table(USAGE_ATTRIBUTED)
    tokens = ", ".join(TOKEN_KEYS)
    batches = warehouse.query_batches(
        f"""SELECT source, root_session_key AS session_id, message_id, request_id,
                   occurred_at, issue_external_id, issue_number, issue_project AS project,
                   project AS session_project, signal, confidence, reason,
                   COALESCE(hint_id, commit_hash, strftime(touched_at, '%Y-%m-%dT%H:%M:%SZ'))
                     AS evidence,
                   {tokens}, {MODE_COLUMN[mode]} AS cost_usd
            FROM usage_attributed WHERE {SCOPE}
            ORDER BY occurred_at, event_id""",
        _scope(since, until, company_id, **sessions),
    )
    for frame in batches:
        for row in frame.iter_rows(named=True):
            yield _iso_times(row)


def issue_cost(warehouse: Warehouse, company_id: int, issue_id: int, mode: Mode = "auto"
               ) -> dict[str, Any] | None:  # fmt: skip
    """One issue's attributed usage over all time: totals, signal shares, first and last day."""
    scope = _scope(None, None, company_id, issue_id)
    daily = _daily(warehouse, mode, scope)
    if daily.is_empty():
        return None
    latest = _latest(daily)
    return {
        "issue_external_id": latest["issue_external_id"], "issue_number": latest["issue_number"],
        "issue_identifier": latest["issue_identifier"], "issue_title": latest["issue_title"],
        "issue_status": latest["issue_status"], "project": latest["issue_project"],
        "goal": latest["goal"],
        **_totals(daily, sum(_sessions(warehouse, [], scope).values())),
        **_shares(daily),
        "first_day": daily["day"].min().isoformat(), "last_day": daily["day"].max().isoformat(),
    }  # fmt: skip


def attributed_share_by(warehouse: Warehouse, key: Literal["project", "agent"],
                        since: date | None, until: date | None,
                        company_id: int | None = None,
                        **sessions: str | None) -> dict[Any, float]:  # fmt: skip
    """Share of each session project's (or agent's) tokens that reached an issue;
    `sessions`: window_params' project, agent and source."""
    warehouse.ensure_table(ATTRIBUTION_DAILY)
    frame = warehouse.query(
        f"""SELECT {key} AS key,
                   sum(CASE WHEN issue_id IS NOT NULL THEN tokens ELSE 0 END) AS attributed,
                   sum(tokens) AS total
            FROM attribution_daily WHERE {SCOPE} GROUP BY ALL""",
        _scope(since, until, company_id, **sessions),
    )
    return {row["key"]: round(float(row["attributed"]) / float(row["total"]), 4)
            if row["total"] else 0.0 for row in frame.iter_rows(named=True)}  # fmt: skip


def _iso_times(row: dict[str, Any]) -> dict[str, Any]:
    for key, value in row.items():
        if key.endswith("_at") and hasattr(value, "isoformat"):
            row[key] = value.isoformat().replace("+00:00", "Z")
    return row
