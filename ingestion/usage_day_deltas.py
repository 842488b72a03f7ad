"""Fold the per-day usage changes the triggers append (`usage_day_deltas`, migration 0006)
into one row per day, so that reading a day's totals stays a few rows whatever the number of
statements that changed it; or count them again from the events, should they ever disagree
(a data-only restore that ran the triggers on top of restored totals, a trigger disabled by
hand)."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

from ingestion.table_statistics import vacuum
from schemas.warehouse import TOKEN_NAMES as TOKENS

# One statement: the rows it deletes are exactly the rows it sums, so changes that other
# transactions append meanwhile (invisible to it) are neither lost nor counted twice.
FOLD = f"""
WITH folded AS (
    DELETE FROM usage_day_deltas
    WHERE day IN (SELECT day FROM usage_day_deltas GROUP BY day HAVING count(*) > 1)
    RETURNING day, requests, {", ".join(TOKENS)}
)
INSERT INTO usage_day_deltas (day, requests, {", ".join(TOKENS)})
SELECT day, sum(requests), {", ".join(f"sum({t})" for t in TOKENS)}
FROM folded GROUP BY day
HAVING sum(requests) <> 0 OR {" OR ".join(f"sum({t}) <> 0" for t in TOKENS)}
ORDER BY day
"""


# The events' own totals, in place of whatever was kept; the lock on the events keeps
# writers out meanwhile so that nothing is counted twice or missed.
RECOUNT = f"""
INSERT INTO usage_day_deltas (day, requests, {", ".join(TOKENS)})
SELECT (occurred_at AT TIME ZONE 'UTC')::date, count(*), {", ".join(f"sum({t})" for t in TOKENS)}
FROM token_usage_events WHERE origin <> 'session_rollup'
GROUP BY 1 ORDER BY 1
"""

# One fold at a time: two at once would only wait on each other's rows (or, locking them in
# different orders, deadlock); a run that finds another folding leaves the work to it.
FOLD_LOCK = "SELECT pg_try_advisory_xact_lock(hashtextextended('tally:usage_day_deltas', 0))"


# Dead rows from which a fold vacuums the table. Each fold deletes about as many rows as it
# keeps: where autovacuum is off (as on these machines) or behind, a table of a few hundred
# live rows, which every report's freshness check reads, grew by the rows of every run.
VACUUM_DEAD_ROWS = 10_000
DEAD_ROWS = "SELECT pg_stat_get_dead_tuples('usage_day_deltas'::regclass)"


def fold_usage_day_deltas(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        locked = conn.execute(FOLD_LOCK).fetchone()
        if locked and locked[0]:
            conn.execute(FOLD)
    if not conn.autocommit:
        return  # a caller's transaction: no VACUUM there
    dead = conn.execute(DEAD_ROWS).fetchone()
    if dead and dead[0] >= VACUUM_DEAD_ROWS:
        vacuum(conn, "usage_day_deltas")


# How often a long-lived writer (the API) folds: each of its usage writes appends a row per day
# it touches, and readers sum the rows, so they must not pile up between ingest runs.
FOLD_INTERVAL_SECONDS = 10.0
_last_fold = 0.0
_last_fold_lock = threading.Lock()


def fold_when_due(conn: psycopg.Connection[Any]) -> None:
    """Fold, unless this process folded within FOLD_INTERVAL_SECONDS: a writer answering many
    small requests pays for a fold now and then, not on each."""
    global _last_fold
    with _last_fold_lock:
        now = time.monotonic()
        if now - _last_fold < FOLD_INTERVAL_SECONDS:
            return
        _last_fold = now
    fold_usage_day_deltas(conn)


def recount_usage_day_deltas(conn: psycopg.Connection[Any]) -> int:
    """Replace the kept totals with a count of the events; returns the number of days."""
    with conn.transaction():
        conn.execute("LOCK TABLE token_usage_events IN SHARE MODE")
        conn.execute("DELETE FROM usage_day_deltas")
        return max(conn.execute(RECOUNT).rowcount, 0)
