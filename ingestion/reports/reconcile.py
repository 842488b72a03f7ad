"""What an upstream's own cost ledger booked beside what tally computes for the same agents
and days: Paperclip's `cost_events` (one row per finished run, billed cost, the usage a
subscription includes at 0) against the billed cost of the agents' requests priced from their
transcripts (`cost_daily`), so that finance sees where the two part and by how much.

A run is booked when it finishes: a run across midnight (UTC) is the next day's upstream, while
its requests are each on their own day. Only requests of sessions linked to an agent count on
tally's side: the upstream knows nothing of the others."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

import polars as pl
import psycopg

from ingestion.reports.costs import (
    GROUPS,
    IN_WINDOW,
    MODE_COLUMN,
    LiveDays,
    Mode,
    billed_sum,
    rows_of,
    window_params,
)
from ingestion.warehouse.base import Warehouse
from schemas.warehouse import COST_DAILY

Reconciling = Literal["agent", "day", "month"]

# The upstream's key for each grouping, in PostgreSQL; tally's are costs.GROUPS'.
UPSTREAM_KEYS = {
    "agent": "a.name",
    "day": "(c.occurred_at AT TIME ZONE 'UTC')::date",
    "month": "to_char(c.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM')",
}
UPSTREAM_COLUMNS = ("upstream_runs", "upstream_entries", "upstream_unpriced_entries",
                    "upstream_input_tokens", "upstream_cached_input_tokens",
                    "upstream_output_tokens", "upstream_cost_usd")  # fmt: skip
TALLY_COLUMNS = ("requests", "input_tokens", "cache_read_tokens", "output_tokens", "cost_usd",
                 "billed_cost_usd", "notional_cost_usd")  # fmt: skip
ZERO = Decimal(0)


def reconcile_columns(by: Reconciling) -> list[str]:
    return [by, *UPSTREAM_COLUMNS, *TALLY_COLUMNS, "difference_usd"]


def upstream_costs(conn: psycopg.Connection[Any], by: Reconciling, since: date | None,
                   until: date | None, company_id: int | None) -> pl.DataFrame:  # fmt: skip
    """The upstream ledger's entries of the window by `by`: runs, entries, tokens and cost."""
    start = datetime.combine(since, time(), tzinfo=UTC) if since else None
    end = datetime.combine(until, time(), tzinfo=UTC) + timedelta(days=1) if until else None
    rows = conn.execute(
        f"""SELECT {UPSTREAM_KEYS[by]} AS key,
                   count(DISTINCT c.heartbeat_run_id) AS upstream_runs,
                   count(*) AS upstream_entries,
                   count(*) FILTER (WHERE c.cost_status = 'unpriced')
                     AS upstream_unpriced_entries,
                   sum(c.input_tokens)::bigint AS upstream_input_tokens,
                   sum(c.cached_input_tokens)::bigint AS upstream_cached_input_tokens,
                   sum(c.output_tokens)::bigint AS upstream_output_tokens,
                   sum(c.cost_usd) AS upstream_cost_usd
            FROM cost_events AS c LEFT JOIN agents AS a ON a.id = c.agent_id
            WHERE (%(company)s::bigint IS NULL OR c.company_id = %(company)s)
              AND (%(start)s::timestamptz IS NULL OR c.occurred_at >= %(start)s)
              AND (%(end)s::timestamptz IS NULL OR c.occurred_at < %(end)s)
            GROUP BY 1""",
        {"company": company_id, "start": start, "end": end},
    ).fetchall()
    key_type = pl.Date if by == "day" else pl.String
    return pl.DataFrame(
        rows,
        schema={"key": key_type, **dict.fromkeys(UPSTREAM_COLUMNS[:-1], pl.Int64),
                "upstream_cost_usd": pl.Decimal(38, 12)},
        orient="row",
    )  # fmt: skip


def tally_costs(warehouse: Warehouse, by: Reconciling, mode: Mode, since: date | None,
                until: date | None, company_id: int | None,
                live: LiveDays | None = None) -> pl.DataFrame:  # fmt: skip
    """tally's cost of the agents' requests in the window by `by` (billed: what no
    subscription covers, in the mode's cost)."""
    expression = GROUPS[by][0]
    cost = MODE_COLUMN[mode]
    warehouse.ensure_table(COST_DAILY)
    daily, live_params, frames = rows_of(COST_DAILY, live)
    return warehouse.query(
        f"""SELECT {expression} AS key, CAST(sum(requests) AS BIGINT) AS requests,
                   CAST(sum(input_tokens) AS BIGINT) AS input_tokens,
                   CAST(sum(cache_read_tokens) AS BIGINT) AS cache_read_tokens,
                   CAST(sum(output_tokens) AS BIGINT) AS output_tokens,
                   sum({cost}) AS cost_usd,
                   {billed_sum(cost)} AS billed_cost_usd,
                   sum(notional_cost_usd) AS notional_cost_usd
            FROM {daily} WHERE {IN_WINDOW} AND agent IS NOT NULL GROUP BY 1""",
        {**window_params(since, until, company_id), **live_params},
        frames,
    )


def reconcile(upstream: pl.DataFrame, computed: pl.DataFrame,
              by: Reconciling) -> list[dict[str, Any]]:  # fmt: skip
    """One row per key either side has: the upstream's figures, tally's, and tally's billed
    cost less the upstream's (positive: the transcripts show more than was booked)."""
    if computed.is_empty():
        computed = pl.DataFrame(schema={"key": upstream.schema["key"]})
    computed = computed.with_columns(pl.col("key").cast(upstream.schema["key"]))
    joined = upstream.join(computed, on="key", how="full", coalesce=True, nulls_equal=True)
    rows = []
    for row in joined.sort("key", nulls_last=True).iter_rows(named=True):
        key = row.pop("key")
        out: dict[str, Any] = {by: key.isoformat() if isinstance(key, date) else key}
        for column in (*UPSTREAM_COLUMNS, *TALLY_COLUMNS):
            value = row.get(column)
            out[column] = value if value is not None else (
                ZERO if column.endswith("_usd") else 0)  # fmt: skip
        out["difference_usd"] = out["billed_cost_usd"] - out["upstream_cost_usd"]
        rows.append(out)
    return rows
