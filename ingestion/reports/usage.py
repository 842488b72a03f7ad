"""Token usage by session, day or model, read from the canonical store.

The output keys are a contract other tools read: `source`, `session_id`, `day`, `model`,
`requests`, `input_tokens` (uncached), `output_tokens`, `reasoning_tokens`,
`cache_read_tokens`, `cache_write_5m_tokens`, `cache_write_1h_tokens`, `first_at`, `last_at`.
A session's subagents are folded into it, as its root session. A report narrowed to a
project, agent or tool keeps the requests the cost reports keep for the same names
(ingestion/session_labels.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

import psycopg

from ingestion.reports.session_filter import SessionFilter
from ingestion.session_labels import (
    AGENT_LABEL,
    PROJECT_LABEL,
    ROOT_SESSION_JOINS,
    SESSION_LABEL_JOINS,
)
from schemas.usage_rules import COUNTED_USAGE
from schemas.warehouse import TOKEN_NAMES

Grouping = Literal["session", "day", "model"]
TOKEN_KEYS = TOKEN_NAMES
GROUP_KEYS: dict[str, tuple[str, ...]] = {
    "session": ("source", "session_id"),
    "day": ("day",),
    "model": ("model",),
}
_GROUP_SQL = {
    "session": ("e.source", "r.session_key"),
    "day": ("(e.occurred_at AT TIME ZONE 'UTC')::date",),
    "model": ("e.model",),
}


def usage_report(
    conn: psycopg.Connection[Any],
    by: Grouping,
    since: date | None = None,
    until: date | None = None,
    company_id: int | None = None,
    sessions: SessionFilter | None = None,
) -> list[dict[str, Any]]:
    narrowed = sessions or SessionFilter()
    group_sql = _GROUP_SQL[by]
    keys = GROUP_KEYS[by]
    selected = ", ".join(f"{expr} AS {key}" for expr, key in zip(group_sql, keys, strict=True))
    sums = ", ".join(f"sum(e.{key})::bigint AS {key}" for key in TOKEN_KEYS)
    where, params = [COUNTED_USAGE], {}
    if since:
        where.append("e.occurred_at >= %(since)s::date::timestamp AT TIME ZONE 'UTC'")
        params["since"] = since
    if until:
        # the day after, in SQL: Python's dates end on 9999-12-31
        where.append("e.occurred_at < (%(until)s::date + 1)::timestamp AT TIME ZONE 'UTC'")
        params["until"] = until
    if narrowed.source:
        where.append("e.source = %(source)s")
        params["source"] = narrowed.source
    if narrowed.project:
        where.append(f"{PROJECT_LABEL} = %(project)s")
        params["project"] = narrowed.project
    if narrowed.agent:
        where.append(f"{AGENT_LABEL} = %(agent)s")
        params["agent"] = narrowed.agent
    if company_id is not None:
        where.append("e.company_id = %(company)s")
        params["company"] = company_id
    query = f"""
        SELECT {selected}, count(*) AS requests, {sums},
               min(e.occurred_at) AS first_at, max(e.occurred_at) AS last_at
        FROM token_usage_events AS e{_joins(by, narrowed)}
        WHERE {" AND ".join(where)}
        GROUP BY {", ".join(str(i + 1) for i in range(len(keys)))}
        ORDER BY {"min(e.occurred_at)" if by == "session" else "1"}
    """
    with conn.cursor() as cur:
        cur.execute(query, params)  # type: ignore[arg-type]
        columns = [column.name for column in cur.description or []]
        rows = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    for row in rows:
        row["first_at"] = _iso(row["first_at"])
        row["last_at"] = _iso(row["last_at"])
        if "day" in row:
            row["day"] = row["day"].isoformat()
    return rows


def _joins(by: Grouping, sessions: SessionFilter) -> str:
    """Only what the report needs: joining every event to its session and root session
    doubled the time of a report by day or model (1.1 s -> 0.55 s at 2 million events)."""
    if sessions.project or sessions.agent:
        return SESSION_LABEL_JOINS  # the root session too
    return ROOT_SESSION_JOINS if by == "session" else ""


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
