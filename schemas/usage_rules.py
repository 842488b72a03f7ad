"""Rules every query that sums canonical usage applies (plain SQL text, importable without
SQLAlchemy so quick commands stay quick)."""

# SQL predicate over `token_usage_events AS e`: an upstream's per-session rollup (origin
# `session_rollup`, e.g. Pigeon's Stop hook) counts only where no transcript of that session
# was read, because the transcript is the exact per-request record. Every query that sums
# usage applies it, so the order sources are ingested in never matters.
# The discounted rollups are gathered once, through their partial index, into an array the
# planner evaluates before the scan: a correlated EXISTS per event instead kept the scan of
# every event out of parallel workers (reports at 10 million events took 4x as long).
COUNTED_USAGE = """(e.origin <> 'session_rollup' OR e.session_id <> ALL (ARRAY(
    SELECT rollup.session_id FROM token_usage_events AS rollup
    JOIN agent_sessions AS own ON own.id = rollup.session_id
    WHERE rollup.origin = 'session_rollup'
      AND EXISTS (SELECT 1 FROM agent_sessions AS transcript
                  WHERE transcript.company_id = own.company_id
                    AND transcript.source IN ('claude_code', 'codex')
                    AND transcript.session_key = own.session_key))))"""


def counted_usage_by_day(start: str, end: str) -> str:
    """SQL rows (day, requests, each token column) of the usage that counts over the UTC days
    [start, end): the per-day totals the triggers keep (`usage_day_deltas`, migration 0006)
    plus the per-session rollups that count, read live; the events themselves are not
    scanned. `start` and `end` are the query's markers for the two dates (`%(start)s`, `$1`),
    each used twice."""
    from schemas.warehouse import TOKEN_NAMES

    tokens = ", ".join(TOKEN_NAMES)
    events = ", ".join(f"e.{c}" for c in TOKEN_NAMES)
    return f"""SELECT day, requests, {tokens} FROM usage_day_deltas
               WHERE day >= {start} AND day < {end}
               UNION ALL
               SELECT (e.occurred_at AT TIME ZONE 'UTC')::date, 1, {events}
               FROM token_usage_events AS e
               WHERE e.origin = 'session_rollup' AND {COUNTED_USAGE}
                 AND e.occurred_at >= {start}::date::timestamp AT TIME ZONE 'UTC'
                 AND e.occurred_at < {end}::date::timestamp AT TIME ZONE 'UTC'"""
