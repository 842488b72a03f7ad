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
