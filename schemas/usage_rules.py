"""Rules every query that sums canonical usage applies (plain SQL text, importable without
SQLAlchemy so quick commands stay quick)."""

# SQL predicate over `token_usage_events AS e JOIN agent_sessions AS s`: an upstream's
# per-session rollup (origin `session_rollup`, e.g. Pigeon's Stop hook) counts only where no
# transcript of that session was read, because the transcript is the exact per-request record.
# Every query that sums usage applies it, so the order sources are ingested in never matters.
COUNTED_USAGE = """NOT (e.origin = 'session_rollup' AND EXISTS (
    SELECT 1 FROM agent_sessions AS transcript
    WHERE transcript.company_id = s.company_id
      AND transcript.source IN ('claude_code', 'codex')
      AND transcript.session_key = s.session_key))"""
