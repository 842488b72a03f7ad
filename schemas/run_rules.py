"""When a heartbeat run ends, as every query that places work inside a run's time reads it
(plain SQL text, importable without SQLAlchemy, like usage_rules)."""

# Paperclip's run statuses (the API takes the same); a run in one of the terminal ones is over.
RUN_STATUSES = ("queued", "scheduled_retry", "running", "succeeded", "interrupted", "failed",
                "cancelled", "timed_out")  # fmt: skip
TERMINAL_RUN_STATUSES = ("succeeded", "interrupted", "failed", "cancelled", "timed_out")
# the same, as an SQL list: `status IN ({TERMINAL_SQL})`
TERMINAL_SQL = ", ".join(f"'{status}'" for status in TERMINAL_RUN_STATUSES)


def run_end(run: str) -> str:
    """SQL: when the run `run` (an alias of `heartbeat_runs`) ended, NULL while it may still
    be going. Its recorded finish; else, for a run in a terminal status whose finish was
    never recorded (its process was lost, or a client sent the status alone), its last
    event, or its start when it has none. Read as running on, such a run was the explicit
    answer for every later request of its agent, and took every later session of its agent
    as overlapping it."""
    return f"""COALESCE({run}.finished_at, CASE WHEN {run}.status IN ({TERMINAL_SQL}) THEN GREATEST(
        {run}.started_at,
        (SELECT max(ev.occurred_at) FROM heartbeat_run_events AS ev WHERE ev.run_id = {run}.id))
        END)"""
