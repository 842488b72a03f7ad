"""Correlation: which project, agent and heartbeat run each agent session belongs to, and
which upstream session ids (an MCP server's process session) are the same conversation as
one of our sessions. Every link records how it was made (`project_link`, `agent_link`,
`session_link`, `session_correlations.method`); links made by a person or an upstream's
identity are never overwritten by an inference.

Rules, each run as one SQL statement, strongest first:
- project: the session's cwd equals or lies under a project's workspace path (longest wins);
  a subagent takes its root session's project;
- identity: an upstream session with the same id as a transcript session (Pigeon's Stop hook
  records Claude Code's session id) lends it its project and agent;
- heartbeat run: the run's adapter session id names the session; else exactly one session of
  the run's agent overlaps the run in time. The session then takes the run's agent;
- commit: the session whose `git commit` printed the commit's hash made it;
- MCP session: exactly one transcript session of the same project spans the MCP process's
  activity (the MCP server lives inside the agent's session); several: no link (never guess).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields
from typing import Any

import psycopg

from schemas.run_rules import run_end

TRANSCRIPT_SOURCES = ("claude_code", "codex")

# A workspace holds a session when it is the session's directory or one of its ancestors:
# each directory on the session's path is looked up among the workspaces (a hash join), as
# comparing every session with every workspace grew with both (300 projects and 30,000
# sessions: 0.8 s on every ingest) and read `_` and `%` in a workspace path as wildcards.
PROJECT_BY_WORKSPACE = """
WITH workspaces AS MATERIALIZED (
    SELECT id, rtrim(workspace_path, '/') AS directory, length(workspace_path) AS depth
    FROM projects WHERE company_id = %(company)s AND workspace_path IS NOT NULL
),
best AS (
    SELECT DISTINCT ON (s.id) s.id AS session_id, w.id AS project_id
    FROM agent_sessions AS s
    CROSS JOIN LATERAL generate_series(1, cardinality(string_to_array(s.project_path, '/')))
        AS part(n)
    JOIN workspaces AS w
      ON w.directory = array_to_string((string_to_array(s.project_path, '/'))[1:part.n], '/')
    WHERE s.company_id = %(company)s AND s.project_path IS NOT NULL
      AND (s.project_link IS NULL OR s.project_link = 'workspace-path')
      AND EXISTS (SELECT 1 FROM workspaces)
    ORDER BY s.id, w.depth DESC, w.id
)
UPDATE agent_sessions AS s SET project_id = best.project_id, project_link = 'workspace-path',
       updated_at = now()
FROM best WHERE s.id = best.session_id AND s.project_id IS DISTINCT FROM best.project_id
"""

# Driven from the root sessions that have a project (read once, then their subagents
# through the root index): probing each session's root instead cost a lookup for every
# session of the company on every ingest (110 ms at 20,000 sessions with no project at all).
# A root is its own root; one the API created has none recorded (and no parent).
PROJECT_FROM_ROOT = """
WITH rooted AS MATERIALIZED (
    SELECT id, project_id FROM agent_sessions
    WHERE company_id = %(company)s AND project_id IS NOT NULL
      AND (root_session_id = id OR (root_session_id IS NULL AND parent_session_id IS NULL))
)
UPDATE agent_sessions AS s SET project_id = r.project_id, project_link = 'root-session',
       updated_at = now()
FROM rooted AS r
WHERE s.root_session_id = r.id AND s.id <> r.id AND s.company_id = %(company)s
  AND s.project_id IS DISTINCT FROM r.project_id
  AND (s.project_link IS NULL OR s.project_link = 'root-session')
"""

# Driven from the (few) upstream sessions that know a project or agent: a transcript corpus
# holds thousands of sessions, and fresh statistics cannot be assumed right after a load.
IDENTITY = """
WITH upstream AS MATERIALIZED (
    SELECT session_key, project_id, agent_id FROM agent_sessions
    WHERE company_id = %(company)s AND source NOT IN ('claude_code', 'codex')
      AND (project_id IS NOT NULL OR agent_id IS NOT NULL)
)
UPDATE agent_sessions AS s
SET project_id = CASE WHEN s.project_link IS NULL OR s.project_link = 'upstream-identity'
                      THEN COALESCE(u.project_id, s.project_id) ELSE s.project_id END,
    project_link = CASE WHEN (s.project_link IS NULL OR s.project_link = 'upstream-identity')
                         AND u.project_id IS NOT NULL THEN 'upstream-identity'
                        ELSE s.project_link END,
    agent_id = CASE WHEN s.agent_link IS NULL OR s.agent_link = 'upstream-identity'
                    THEN COALESCE(u.agent_id, s.agent_id) ELSE s.agent_id END,
    agent_link = CASE WHEN (s.agent_link IS NULL OR s.agent_link = 'upstream-identity')
                       AND u.agent_id IS NOT NULL THEN 'upstream-identity'
                      ELSE s.agent_link END,
    updated_at = now()
FROM upstream AS u
WHERE s.company_id = %(company)s AND s.source IN ('claude_code', 'codex')
  AND s.session_key = u.session_key
  AND (s.project_id IS DISTINCT FROM COALESCE(u.project_id, s.project_id)
       OR s.agent_id IS DISTINCT FROM COALESCE(u.agent_id, s.agent_id))
"""

RUN_BY_ADAPTER_SESSION = """
UPDATE heartbeat_runs AS h SET session_id = s.id, session_link = 'adapter-session-id',
       updated_at = now()
FROM agent_sessions AS s
WHERE h.company_id = %(company)s AND s.company_id = h.company_id
  AND s.session_key = h.adapter_session_key AND NOT s.is_subagent
  AND s.source IN ('claude_code', 'codex')
  AND h.session_id IS DISTINCT FROM s.id
  AND (h.session_link IS NULL OR h.session_link IN ('adapter-session-id', 'time-overlap'))
"""

# Two intervals overlap when one starts within the other, so the pairs are found through
# the indexes on the starts: the sessions that start during each run, and the runs that
# start during each session (strictly after its start, so no pair is found twice); the
# overlap itself is checked on every pair found. A join of every run with every session of
# its agent compared them all (`bench/correlation.py`, 20,000 of each: 21.8 s on every
# ingest, against 0.4 s).
RUN_BY_OVERLAP = f"""
WITH runs AS MATERIALIZED (
    SELECT id, agent_id, started_at, COALESCE({run_end("r")}, 'infinity') AS ended_at
    FROM heartbeat_runs AS r
    WHERE company_id = %(company)s AND started_at IS NOT NULL AND agent_id IS NOT NULL
      AND (session_link IS NULL OR session_link = 'time-overlap')
),
sessions AS MATERIALIZED (
    SELECT id, agent_id, first_activity_at, last_activity_at FROM agent_sessions
    WHERE company_id = %(company)s AND agent_id IS NOT NULL AND NOT is_subagent
      AND source IN ('claude_code', 'codex')
),
pairs AS (
    SELECT h.id AS run_id, s.id AS session_id, h.started_at, h.ended_at,
           s.first_activity_at, s.last_activity_at
    FROM runs AS h
    CROSS JOIN LATERAL (
        SELECT id, first_activity_at, last_activity_at FROM agent_sessions AS s
        WHERE s.first_activity_at >= h.started_at AND s.first_activity_at < h.ended_at
          AND s.agent_id = h.agent_id AND s.company_id = %(company)s AND NOT s.is_subagent
          AND s.source IN ('claude_code', 'codex')
        OFFSET 0  -- a nested loop over the index: pulled up, it became a join of all
    ) AS s
    UNION ALL
    SELECT h.id, s.id, h.started_at, h.ended_at, s.first_activity_at, s.last_activity_at
    FROM sessions AS s
    CROSS JOIN LATERAL (
        SELECT id, started_at, COALESCE({run_end("h")}, 'infinity') AS ended_at
        FROM heartbeat_runs AS h
        WHERE h.agent_id = s.agent_id AND h.started_at > s.first_activity_at
          AND h.started_at < s.last_activity_at AND h.company_id = %(company)s
          AND (h.session_link IS NULL OR h.session_link = 'time-overlap')
        OFFSET 0
    ) AS h
),
candidates AS (
    SELECT run_id, min(session_id) AS session_id, count(*) AS n
    FROM pairs
    WHERE first_activity_at < ended_at AND last_activity_at > started_at
    GROUP BY run_id
),
linked AS (
    UPDATE heartbeat_runs AS h SET session_id = c.session_id, session_link = 'time-overlap',
           updated_at = now()
    FROM candidates AS c
    WHERE h.id = c.run_id AND c.n = 1 AND h.session_id IS DISTINCT FROM c.session_id
    RETURNING h.id
),
-- a link whose overlap no longer holds alone (a second session of the agent overlaps the
-- run, or the run turned out to end sooner) is withdrawn: never a guess
unlinked AS (
    UPDATE heartbeat_runs AS h SET session_id = NULL, session_link = NULL, updated_at = now()
    WHERE h.company_id = %(company)s AND h.session_link = 'time-overlap'
      AND h.id NOT IN (SELECT run_id FROM candidates WHERE n = 1)  -- one hashed lookup
    RETURNING h.id
)
SELECT id FROM linked UNION ALL SELECT id FROM unlinked
"""

AGENT_FROM_RUN = """
UPDATE agent_sessions AS s SET agent_id = h.agent_id, agent_link = 'heartbeat-run',
       updated_at = now()
FROM heartbeat_runs AS h
WHERE s.company_id = %(company)s AND h.session_id = s.id AND h.agent_id IS NOT NULL
  AND s.agent_id IS DISTINCT FROM h.agent_id
  AND (s.agent_link IS NULL OR s.agent_link IN ('heartbeat-run', 'upstream-identity'))
"""

# An MCP session lies within its agent session (with some slack), so it starts within the
# agent session's span: found from each agent session through the index on the start, as a
# join of every MCP session with every agent session of the project compared them all
# (`bench/correlation.py`, 10,000 and 20,000: 6.9 s on every ingest, against 0.3 s).
MCP_SESSIONS = """
WITH candidates AS (
    SELECT m.source AS upstream_source, m.session_key AS upstream_key,
           min(s.id) AS session_id, count(*) AS n,
           min(EXTRACT(EPOCH FROM least(s.last_activity_at, m.last_activity_at)
                              - greatest(s.first_activity_at, m.first_activity_at)))::bigint
             AS overlap_seconds
    FROM agent_sessions AS s
    CROSS JOIN LATERAL (
        SELECT source, session_key, first_activity_at, last_activity_at
        FROM agent_sessions AS m
        WHERE m.first_activity_at >= s.first_activity_at - %(slack)s
          AND m.first_activity_at <= s.last_activity_at + %(slack)s
          AND m.company_id = s.company_id AND m.project_id = s.project_id
          AND m.source LIKE '%%\\_mcp'
        OFFSET 0  -- a nested loop over the index: pulled up, it became a join of all
    ) AS m
    WHERE s.company_id = %(company)s AND s.project_id IS NOT NULL
      AND NOT s.is_subagent AND s.source IN ('claude_code', 'codex')
      AND s.first_activity_at <= m.first_activity_at + %(slack)s
      AND s.last_activity_at >= m.last_activity_at - %(slack)s
    GROUP BY m.source, m.session_key
)
INSERT INTO session_correlations (company_id, upstream_source, upstream_key, session_id,
                                  method, overlap_seconds)
SELECT %(company)s, upstream_source, upstream_key, session_id, 'time-overlap+workspace',
       overlap_seconds
FROM candidates WHERE n = 1
ON CONFLICT (company_id, upstream_source, upstream_key) DO UPDATE
  SET session_id = excluded.session_id, method = excluded.method,
      overlap_seconds = excluded.overlap_seconds, updated_at = now()
  WHERE session_correlations.method = 'time-overlap+workspace'
    AND session_correlations.session_id IS DISTINCT FROM excluded.session_id
"""


# A commit whose hash a session's `git commit` printed (tool_calls.commit_hashes holds the
# short hash) was made by that session; a short hash matching several sessions links none.
# The equality on the first 7 characters lets PostgreSQL hash-join commits with printed
# hashes: the prefix LIKE alone compared every commit with every hash (`bench/correlation.py`,
# 50,000 commits and 10,000 printed hashes: 20.1 s on every ingest, against 0.1 s).
COMMIT_BY_TOOL_CALL = """
WITH printed AS (
    SELECT g.id AS commit_id, min(COALESCE(s.root_session_id, s.id)) AS session_id,
           count(DISTINCT COALESCE(s.root_session_id, s.id)) AS n
    FROM git_commits AS g
    JOIN tool_calls AS t ON t.company_id = g.company_id AND t.commit_hashes <> '{}'
    JOIN agent_sessions AS s ON s.id = t.session_id
    CROSS JOIN LATERAL unnest(t.commit_hashes) AS printed_hash(hash)
    WHERE g.company_id = %(company)s AND length(printed_hash.hash) >= 7
      AND left(g.hash, 7) = left(printed_hash.hash, 7)
      AND g.hash LIKE printed_hash.hash || '%%'
      AND (g.session_link IS NULL OR g.session_link = 'tool-call-output')
    GROUP BY g.id
)
UPDATE git_commits AS g SET session_id = p.session_id, session_link = 'tool-call-output'
FROM printed AS p
WHERE g.id = p.commit_id AND p.n = 1 AND g.session_id IS DISTINCT FROM p.session_id
"""


@dataclass
class CorrelationSummary:
    projects: int = 0
    identities: int = 0
    runs: int = 0
    agents: int = 0
    mcp_sessions: int = 0
    commits: int = 0

    @property
    def total(self) -> int:
        return (self.projects + self.identities + self.runs + self.agents + self.mcp_sessions
                + self.commits)  # fmt: skip

    def __add__(self, other: CorrelationSummary) -> CorrelationSummary:
        return CorrelationSummary(*(getattr(self, f.name) + getattr(other, f.name)
                                    for f in fields(self)))  # fmt: skip


def correlate(conn: psycopg.Connection[Any], company_id: int,
              mcp_slack_seconds: int | None = None) -> CorrelationSummary:  # fmt: skip
    """Run every rule once, in order; idempotent (a second run changes nothing). The MCP
    slack defaults to TALLY_MCP_CORRELATION_SLACK_SECONDS."""
    from datetime import timedelta

    from ingestion.settings import get_settings

    if mcp_slack_seconds is None:
        mcp_slack_seconds = get_settings().mcp_correlation_slack_seconds
    params = {"company": company_id, "slack": timedelta(seconds=mcp_slack_seconds)}
    summary = CorrelationSummary()

    def run(sql: str) -> int:
        return max(conn.execute(sql, params).rowcount, 0)

    # The planner cannot size the lateral lookups and per-path directories, and its estimates
    # start JIT compilation, which cost 0.3-0.4 s a statement, four times the work itself
    # (20,000 sessions: 1.9 s a run against 0.5 s without). Set for the session, not in one
    # transaction around the rules: on an autocommit connection each rule still commits
    # alone, so two ingests correlating at once never hold each other's rows across rules.
    conn.execute("SET jit = off")
    try:
        summary.projects = run(PROJECT_BY_WORKSPACE)
        summary.identities = run(IDENTITY)
        summary.projects += run(PROJECT_FROM_ROOT)
        summary.runs = run(RUN_BY_ADAPTER_SESSION) + run(RUN_BY_OVERLAP)
        summary.agents = run(AGENT_FROM_RUN)
        summary.mcp_sessions = run(MCP_SESSIONS)
        summary.commits = run(COMMIT_BY_TOOL_CALL)
    finally:
        with contextlib.suppress(psycopg.Error):  # a failed transaction undoes the SET itself
            conn.execute("RESET jit")
    return summary


def correlate_companies(conn: psycopg.Connection[Any],
                        skip: str | None = None) -> CorrelationSummary:  # fmt: skip
    """Correlate every company that has sessions but `skip` (a slug: the company an ingest
    that read files has just correlated). The API writes sessions and runs for any company,
    where the log ingests correlate only the company they load into (TALLY_COMPANY): a run
    another company posted was never linked to its session."""
    companies = conn.execute(
        """SELECT id FROM companies AS c
           WHERE c.slug IS DISTINCT FROM %s
             AND EXISTS (SELECT 1 FROM agent_sessions AS s WHERE s.company_id = c.id)
           ORDER BY id""",
        (skip,),
    ).fetchall()
    summary = CorrelationSummary()
    for (company_id,) in companies:
        summary += correlate(conn, company_id)
    return summary


def correlate_after_log_ingest(conninfo: str, company: str, files_read: int) -> CorrelationSummary:
    """What `tally ingest all` and the hourly ingestion do once the agent logs are read:
    correlate every other company (and `company`, the one the logs load into, when nothing was
    read, as its ingests then did not). On an autocommit connection, as the ingests' own
    correlation: each rule commits alone, so two correlating at once never hold each other's
    rows across rules and companies."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return correlate_companies(conn, skip=company if files_read else None)
