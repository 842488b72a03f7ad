"""A budget policy's status: what was spent in its current window, the share of the budget,
and when, at the window's pace so far, the budget runs out.

Spend in USD and tokens comes from the warehouse rollups (`cost_daily`, and
`attribution_daily` for an issue's policy), so it is as fresh as the last materialisation;
runs are counted in the canonical store. USD spend is what is billed: usage of the sources a
subscription covers (TALLY_SUBSCRIPTION_SOURCES) adds nothing, as in Paperclip's budgets;
its API-equivalent cost is shown beside, as `notional_spent`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Context, Decimal
from typing import Any

import psycopg

from ingestion.warehouse.base import Warehouse
from schemas.money import USD_SCALE
from schemas.warehouse import ATTRIBUTION_DAILY, COST_DAILY, USAGE_ATTRIBUTED, USAGE_PRICED

TOKEN_SUM = ("input_tokens + output_tokens + cache_read_tokens + cache_write_5m_tokens "
             "+ cache_write_1h_tokens")  # fmt: skip
LIFETIME_PACE = timedelta(days=30)
USD_QUANTUM = Decimal(1).scaleb(-USD_SCALE)
WIDE = Context(prec=60)  # quantize raises past the default 28 digits
HORIZON = timedelta(days=3650)  # beyond this, "never" is the honest projection


@dataclass(frozen=True)
class Window:
    start: datetime | None  # None: since the beginning
    end: datetime | None  # None: open


def current_window(kind: str, days: int | None, now: datetime) -> Window:
    today = datetime.combine(now.date(), time(), tzinfo=UTC)
    if kind == "calendar_month":
        start = today.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        return Window(start, end)
    if kind == "day":
        return Window(today, today + timedelta(days=1))
    if kind == "rolling_days":
        return Window(now - timedelta(days=days or 1), now)
    return Window(None, None)


def _scope_names(conn: psycopg.Connection[Any], policy: dict[str, Any]) -> dict[str, Any]:
    scope, scope_id = policy["scope_type"], policy["scope_id"]
    if scope == "agent":
        row = conn.execute("SELECT name FROM agents WHERE id = %s", (scope_id,)).fetchone()
        return {"agent": row[0] if row else None}
    if scope == "project":
        row = conn.execute("SELECT name FROM projects WHERE id = %s", (scope_id,)).fetchone()
        return {"project": row[0] if row else None}
    if scope == "issue":
        return {"issue": scope_id}
    return {}


# What a measure of spend sums: USD billed (nothing for the sources a subscription covers),
# USD at API prices, or tokens.
MEASURES = {
    "usd": "sum(CASE WHEN list_contains($covered, source) THEN 0 ELSE cost_usd END)",
    "notional_usd": "sum(computed_cost_usd)",
    "tokens": f"sum({TOKEN_SUM})",
}


def _spend(warehouse: Warehouse, policy: dict[str, Any], names: dict[str, Any],
           since: datetime | None, covered: frozenset[str] = frozenset(),
           measure_of: str | None = None) -> Decimal:  # fmt: skip
    """Spent since `since` (None: ever), in the policy's metric (or `measure_of`, a key of
    MEASURES); `covered`: the sources a subscription covers. The daily rollups hold whole
    days: a window that starts inside a day (a rolling one) takes that day's requests from
    the per-request table, by their times, where the rollup alone counted the whole day (a
    one-day rolling window read up to twice its spend)."""
    measure = MEASURES[measure_of or policy["metric"]]
    params: dict[str, Any] = {"company": policy["company_id"]}
    if "$covered" in measure:
        params["covered"] = sorted(covered)
    if "issue" in names:
        daily, requests = ATTRIBUTION_DAILY, USAGE_ATTRIBUTED
        filters = " AND issue_id = $issue"
        params["issue"] = names["issue"]
    else:
        daily, requests = COST_DAILY, USAGE_PRICED
        filters = "".join(f" AND {key} = ${key}" for key in names)
        params.update(names)
    whole_days_from = date(1970, 1, 1) if since is None else since.date()
    starts_inside_a_day = since is not None and since.timetz() != time(tzinfo=since.tzinfo)
    if starts_inside_a_day:
        whole_days_from += timedelta(days=1)
    warehouse.ensure_table(daily)
    spent = warehouse.query(
        f"""SELECT {measure} AS spent FROM {daily.name}
            WHERE company_id = $company AND day >= $whole_days_from{filters}""",
        {**params, "whole_days_from": whole_days_from},
    )["spent"][0]
    total = Decimal(str(spent or 0))
    if starts_inside_a_day and since is not None:
        warehouse.ensure_table(requests)
        part = warehouse.query(
            f"""SELECT {measure} AS spent FROM {requests.name}
                WHERE company_id = $company AND day = $day AND occurred_at >= $since{filters}""",
            {**params, "day": since.date(), "since": since},
        )["spent"][0]
        total += Decimal(str(part or 0))
    return total


def _runs(conn: psycopg.Connection[Any], policy: dict[str, Any], since: datetime | None) -> int:
    scope, scope_id = policy["scope_type"], policy["scope_id"]
    condition = {"agent": "AND r.agent_id = %(scope)s", "issue": "AND r.issue_id = %(scope)s",
                 "project": "AND i.project_id = %(scope)s"}.get(scope, "")  # fmt: skip
    row = conn.execute(
        f"""SELECT count(*) FROM heartbeat_runs r LEFT JOIN issues i ON i.id = r.issue_id
            WHERE r.company_id = %(company)s
              AND (%(since)s::timestamptz IS NULL OR r.started_at >= %(since)s) {condition}""",
        {"company": policy["company_id"], "since": since, "scope": scope_id},
    ).fetchone()
    return int(row[0]) if row else 0


def policy_status(
    conn: psycopg.Connection[Any],
    warehouse: Warehouse,
    policy: dict[str, Any],
    now: datetime | None = None,
    *,
    subscription_sources: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """`subscription_sources`: the sources whose usage a subscription covers, which a USD
    budget counts at nothing (TALLY_SUBSCRIPTION_SOURCES)."""
    now = now or datetime.now(UTC)
    window = current_window(policy["window_kind"], policy["window_days"], now)
    pace_from = window.start or now - LIFETIME_PACE
    notional = None
    if policy["metric"] == "runs":
        spent = Decimal(_runs(conn, policy, window.start))
        recent = Decimal(_runs(conn, policy, pace_from)) if window.start is None else spent
    else:
        names = _scope_names(conn, policy)
        covered = subscription_sources
        spent = _spend(warehouse, policy, names, window.start, covered)
        recent = spent if window.start else _spend(warehouse, policy, names, pace_from, covered)
        if policy["metric"] == "usd":
            notional = _spend(warehouse, policy, names, window.start,
                              measure_of="notional_usd")  # fmt: skip
    if policy["metric"] == "usd":  # at the stored scale, as every amount: not "0" when none
        spent = spent.quantize(USD_QUANTUM, context=WIDE)
        notional = notional.quantize(USD_QUANTUM, context=WIDE) if notional is not None else None
    amount = Decimal(policy["amount"])
    percent = (spent / amount * 100) if amount else Decimal(0)
    elapsed = max((now - pace_from).total_seconds(), 1.0)
    rate = recent / Decimal(elapsed)  # per second
    exhausted_at = None
    if spent >= amount:
        exhausted_at = now
    elif rate > 0:
        seconds = float((amount - spent) / rate)
        if seconds < HORIZON.total_seconds():
            at = now + timedelta(seconds=seconds)
            exhausted_at = at if window.end is None or at < window.end else None
    state = ("exceeded" if spent >= amount
             else "warning" if percent >= policy["warn_percent"] else "ok")  # fmt: skip
    return {
        "policy_id": policy["id"], "metric": policy["metric"],
        "window_kind": policy["window_kind"],
        "window_start": window.start.isoformat() if window.start else None,
        "window_end": window.end.isoformat() if window.end else None,
        "amount": amount, "spent": spent, "notional_spent": notional,
        "percent": round(float(percent), 2),
        "status": state, "hard_stop": policy["hard_stop"],
        "projected_exhaustion_at": exhausted_at.isoformat() if exhausted_at else None,
    }  # fmt: skip
