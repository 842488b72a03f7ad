"""The attribution engine's inputs for a window, read from the canonical store through Arrow.

Sessions are named by their root session's id (a subagent works for its parent's issue), and
upstream session ids (an MCP server's process session, a hint's session key) are resolved to
that same name through `session_correlations` or a transcript session with the same key.
Context reaches outside the window as far as the engine looks: touches back by the touch
window, commits forward by the commit window, and every in-progress interval and hint that
still covers the window, however old.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import polars as pl

from ingestion.extract import _arrow, _utc
from schemas.run_rules import run_end
from schemas.usage_rules import COUNTED_USAGE

ROOT = "COALESCE({s}.root_session_id, {s}.id)::text"

# An upstream session key ({a}.session_key of company {a}.company_id) as our root session.
RESOLVED_SESSION = """
LEFT JOIN session_correlations AS c ON c.company_id = {a}.company_id
      AND c.upstream_key = {a}.session_key
LEFT JOIN LATERAL (
    SELECT t.id FROM agent_sessions AS t
    WHERE t.company_id = {a}.company_id AND t.session_key = {a}.session_key
      AND t.source IN ('claude_code', 'codex', 'api')
    ORDER BY t.is_subagent, t.id LIMIT 1) AS d ON TRUE
LEFT JOIN agent_sessions AS rs ON rs.id = COALESCE({explicit}c.session_id, d.id)
"""

EVENTS = f"""
SELECT e.id AS event_id, e.company_id, e.source, s.session_key AS source_session_key,
       e.message_id, e.request_id, {ROOT.format(s="s")} AS session_key,
       COALESCE(s.agent_id, r.agent_id) AS agent_id,
       COALESCE(s.project_id, r.project_id) AS project_id, e.occurred_at
FROM token_usage_events AS e
JOIN agent_sessions AS s ON s.id = e.session_id
JOIN agent_sessions AS r ON r.id = COALESCE(s.root_session_id, s.id)
WHERE e.occurred_at >= $1::timestamptz AND e.occurred_at < $2::timestamptz
  AND {COUNTED_USAGE}
"""

HINTS = f"""
SELECT 'hint:' || h.id AS hint_id,
       {ROOT.format(s="rs")} AS session_key,
       CASE WHEN h.session_key IS NULL AND h.session_id IS NULL THEN h.agent_id END
         AS agent_id,
       h.issue_id, h.valid_from, h.valid_to
FROM attribution_hints AS h
{RESOLVED_SESSION.format(a="h", explicit="h.session_id, ")}
WHERE h.valid_from < $2::timestamptz AND (h.valid_to IS NULL OR h.valid_to > $1::timestamptz)
  AND (rs.id IS NOT NULL OR (h.session_key IS NULL AND h.session_id IS NULL))
UNION ALL
-- a heartbeat run serves its issue for as long as it runs: its session's, else its agent's
SELECT 'run:' || h.external_id, {ROOT.format(s="rs")},
       CASE WHEN h.session_id IS NULL THEN h.agent_id END, h.issue_id, h.started_at, h.ended_at
FROM (SELECT *, {run_end("r")} AS ended_at FROM heartbeat_runs AS r
      WHERE r.issue_id IS NOT NULL AND r.started_at IS NOT NULL
        AND r.started_at < $2::timestamptz) AS h
LEFT JOIN agent_sessions AS rs ON rs.id = h.session_id
WHERE (h.ended_at IS NULL OR (h.ended_at > $1::timestamptz AND h.ended_at > h.started_at))
  AND (h.session_id IS NOT NULL OR h.agent_id IS NOT NULL)
"""

PROGRESS = """
WITH changes AS (
    SELECT c.issue_id, c.to_status, c.changed_at, c.actor_agent_id,
           lead(c.changed_at) OVER (PARTITION BY c.issue_id ORDER BY c.changed_at, c.id)
             AS next_at
    FROM issue_status_changes AS c
)
SELECT ch.issue_id, COALESCE(ch.actor_agent_id, i.assignee_agent_id) AS agent_id,
       i.project_id, ch.changed_at AS started_at, ch.next_at AS ended_at
FROM changes AS ch JOIN issues AS i ON i.id = ch.issue_id
WHERE ch.to_status = 'in_progress' AND ch.changed_at < $2::timestamptz
  AND (ch.next_at IS NULL OR ch.next_at > $1::timestamptz)
"""

TOUCHES = f"""
SELECT {ROOT.format(s="rs")} AS session_key, a.issue_id, a.occurred_at AS touched_at
FROM issue_activity AS a
{RESOLVED_SESSION.format(a="a", explicit="")}
WHERE a.session_key IS NOT NULL AND rs.id IS NOT NULL
  AND a.occurred_at >= $1::timestamptz AND a.occurred_at < $2::timestamptz
"""

# A tool call whose arguments name an issue touched it: by upstream id or identifier in the
# company, or by `#N` within the session's project. One branch per way of naming, each an
# equality PostgreSQL can hash-join (a join on the three conditions ORed compared every
# reference with every issue: 15,000 references and 50,000 issues took 113 s a window); a
# reference naming an issue in several ways is found by the first branch only, so each
# (call, reference, issue) comes once, as before.
TOOL_TOUCHES = f"""
WITH refs AS MATERIALIZED (
    SELECT t.company_id, {ROOT.format(s="s")} AS session_key,
           COALESCE(s.project_id, r.project_id) AS project_id, t.started_at, ref.text,
           CASE WHEN ref.text ~ '^#[0-9]{{1,9}}$' THEN substr(ref.text, 2)::bigint END
             AS number
    FROM tool_calls AS t
    JOIN agent_sessions AS s ON s.id = t.session_id
    JOIN agent_sessions AS r ON r.id = COALESCE(s.root_session_id, s.id)
    CROSS JOIN LATERAL unnest(t.issue_refs) AS ref(text)
    WHERE t.issue_refs <> '{{}}' AND t.started_at IS NOT NULL
      AND t.started_at >= $1::timestamptz AND t.started_at < $2::timestamptz
)
SELECT f.session_key, i.id AS issue_id, f.started_at AS touched_at
FROM refs AS f JOIN issues AS i ON i.company_id = f.company_id AND i.external_id = f.text
UNION ALL
SELECT f.session_key, i.id, f.started_at
FROM refs AS f JOIN issues AS i ON i.company_id = f.company_id AND i.identifier = f.text
WHERE i.external_id IS DISTINCT FROM f.text
UNION ALL
SELECT f.session_key, i.id, f.started_at
FROM refs AS f JOIN issues AS i ON i.company_id = f.company_id AND i.number = f.number
 AND i.project_id = f.project_id
WHERE i.external_id IS DISTINCT FROM f.text AND i.identifier IS DISTINCT FROM f.text
"""

COMMITS = f"""
SELECT {ROOT.format(s="s")} AS session_key, g.hash AS commit_hash, g.committed_at,
       l.issue_id
FROM git_commits AS g
JOIN issue_commit_links AS l ON l.commit_id = g.id
JOIN agent_sessions AS s ON s.id = g.session_id
WHERE g.committed_at >= $1::timestamptz AND g.committed_at < $2::timestamptz
"""

ISSUES = """
SELECT i.id AS issue_id, i.source AS issue_source, i.external_id AS issue_external_id,
       i.number AS issue_number, i.identifier AS issue_identifier, i.title AS issue_title,
       i.status AS issue_status, i.completed_at AS issue_completed_at,
       p.name AS issue_project, g.title AS goal
FROM issues AS i
LEFT JOIN projects AS p ON p.id = i.project_id
LEFT JOIN goals AS g ON g.id = COALESCE(i.goal_id, p.goal_id)
"""

TS = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class AttributionInputs:
    events: pl.DataFrame
    hints: pl.DataFrame
    progress: pl.DataFrame
    touches: pl.DataFrame
    commits: pl.DataFrame


def _between(conninfo: str, sql: str, start: str, end: str, schema: dict[str, pl.DataType]
             ) -> pl.DataFrame:  # fmt: skip
    frame = _arrow(conninfo, sql, (start, end))
    return frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items())


def attribution_inputs(conninfo: str, start: date, end: date, touch_window: timedelta,
                       commit_window: timedelta) -> AttributionInputs:  # fmt: skip
    first = datetime.combine(start, time(), tzinfo=UTC)
    last = datetime.combine(end, time(), tzinfo=UTC)
    window = (_utc(start), _utc(end))
    events = _between(conninfo, EVENTS, *window, {
        "event_id": pl.Int64, "company_id": pl.Int64, "source": pl.String,
        "source_session_key": pl.String, "message_id": pl.String, "request_id": pl.String,
        "session_key": pl.String, "agent_id": pl.Int64, "project_id": pl.Int64,
        "occurred_at": TS,
    })  # fmt: skip
    hints = _between(conninfo, HINTS, *window, {
        "hint_id": pl.String, "session_key": pl.String, "agent_id": pl.Int64,
        "issue_id": pl.Int64, "valid_from": TS, "valid_to": TS,
    })  # fmt: skip
    # a touch before the window can still decide its first hours; an issue that left
    # progress since must be seen leaving
    reach_back = ((first - touch_window).isoformat(), window[1])
    progress = _between(conninfo, PROGRESS, *reach_back, {
        "issue_id": pl.Int64, "agent_id": pl.Int64, "project_id": pl.Int64,
        "started_at": TS, "ended_at": TS,
    })  # fmt: skip
    touch_schema = {"session_key": pl.String, "issue_id": pl.Int64, "touched_at": TS}
    touches = pl.concat([
        _between(conninfo, TOUCHES, *reach_back, touch_schema),
        _between(conninfo, TOOL_TOUCHES, *reach_back, touch_schema),
    ]).unique()  # fmt: skip
    commits = _between(conninfo, COMMITS, window[0], (last + commit_window).isoformat(), {
        "session_key": pl.String, "commit_hash": pl.String, "committed_at": TS,
        "issue_id": pl.Int64,
    })  # fmt: skip
    return AttributionInputs(events, hints, progress, touches, commits)


def issues(conninfo: str) -> pl.DataFrame:
    return _arrow(conninfo, ISSUES).with_columns(
        pl.col("issue_id").cast(pl.Int64), pl.col("issue_number").cast(pl.Int64),
        pl.col("issue_completed_at").cast(TS),
    )  # fmt: skip
