"""Writing ingested records: one transaction per batch, keyed like file ingestion, so a
retried batch finds its records already there and answers `duplicate`. Scope is checked
before anything is written: a record that would act for another agent, or write into another
agent's session or run, fails the whole batch with 403 and nothing is kept."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from api.batch import Outcome
from api.errors import forbidden
from api.records import AttributionHintIn, HeartbeatRunIn, ToolCallIn, UsageEventIn
from ingestion.keys import Principal
from ingestion.tool_call_merge import ADDS_TO_TOOL_CALL, WIDEN_TOOL_CALL
from ingestion.usage_day_deltas import fold_when_due
from schemas.money import decimal_text
from schemas.run_rules import TERMINAL_SQL


class Directory:
    """The company's agents and issues, looked up once per batch."""

    def __init__(self, conn: psycopg.Connection[Any], caller: Principal) -> None:
        self.conn, self.caller = conn, caller
        self._agents: dict[str, int] | None = None

    def agent(self, ref: str | None, index: int, outcome: Outcome) -> int | bool | None:
        """The agent a record acts for; False when the record is rejected."""
        if self.caller.role == "agent":
            if ref is not None and self._agent_ids().get(ref) != self.caller.agent_id:
                raise forbidden(f"record {index}: an agent key writes only as its own agent")
            return self.caller.agent_id
        if ref is None:
            return None
        found = self._agent_ids().get(ref)
        if found is None:
            outcome.reject(index, f"agent: {ref!r} is not an agent of this company")
            return False
        return found

    def _agent_ids(self) -> dict[str, int]:
        if self._agents is None:
            rows = self.conn.execute(
                "SELECT id, external_id, name FROM agents WHERE company_id = %s",
                (self.caller.company_id,),
            ).fetchall()
            self._agents = {}
            for agent_id, external_id, name in rows:
                self._agents.setdefault(name, agent_id)
                self._agents[external_id] = agent_id
        return self._agents

    def issue(self, ref: str) -> tuple[int | None, str | None]:
        """(issue id, None) or (None, why not)."""
        rows = self.conn.execute(
            """SELECT id, external_id = %(ref)s OR id::text = %(ref)s AS exact FROM issues
               WHERE company_id = %(company)s
                 AND (external_id = %(ref)s OR identifier = %(ref)s OR id::text = %(ref)s)""",
            {"ref": ref, "company": self.caller.company_id},
        ).fetchall()
        exact = [row[0] for row in rows if row[1]]
        if len(exact) == 1:
            return exact[0], None
        if len(rows) == 1:
            return rows[0][0], None
        return None, (
            f"issue: {ref!r} names several issues"
            if rows
            else f"issue: {ref!r} is not an issue of this company"
        )


def _check_owned(
    conn: psycopg.Connection[Any],
    caller: Principal,
    table: str,
    key_column: str,
    keys: Iterable[tuple[str, str]],
    what: str,
) -> None:
    """An agent key may not write into a session or run another agent owns."""
    if caller.role != "agent":
        return
    pairs = sorted(set(keys))
    if not pairs:
        return
    rows = conn.execute(
        f"""SELECT t.{key_column} FROM {table} AS t
            JOIN unnest(%s::text[], %s::text[]) AS k(source, key)
              ON t.source = k.source AND t.{key_column} = k.key
            WHERE t.company_id = %s AND t.agent_id IS NOT NULL AND t.agent_id <> %s""",
        ([p[0] for p in pairs], [p[1] for p in pairs], caller.company_id, caller.agent_id),
    ).fetchall()
    if rows:
        raise forbidden(f"{what} {rows[0][0]!r} belongs to another agent")


# How a batch widens a session it shares with earlier ones: the span grows, a missing agent,
# link or path is filled in, nothing known is overwritten.
WIDEN_SESSION = """ON CONFLICT (company_id, source, session_key) DO UPDATE SET
    first_activity_at = LEAST(agent_sessions.first_activity_at, excluded.first_activity_at),
    last_activity_at = GREATEST(agent_sessions.last_activity_at, excluded.last_activity_at),
    agent_id = COALESCE(agent_sessions.agent_id, excluded.agent_id),
    agent_link = COALESCE(agent_sessions.agent_link, excluded.agent_link),
    project_path = COALESCE(agent_sessions.project_path, excluded.project_path),
    updated_at = now()
"""


def needs_widening(stored: str, first: str, last: str, agent: str, path: str) -> str:
    """SQL: whether the stored session row `stored` must widen to a span `first`..`last`
    and take an `agent` or `path` it lacks."""
    return f"""({first} < {stored}.first_activity_at OR {last} > {stored}.last_activity_at
        OR {stored}.first_activity_at IS NULL
        OR ({stored}.agent_id IS NULL AND {agent} IS NOT NULL)
        OR ({stored}.project_path IS NULL AND {path} IS NOT NULL))"""


UPSERT_SESSIONS = f"""
INSERT INTO agent_sessions (company_id, source, session_key, agent_id, agent_link, project_path,
                            first_activity_at, last_activity_at)
SELECT %(company)s, t.source, t.key, t.agent,
       CASE WHEN t.agent IS NOT NULL THEN 'api-key' END, t.path, t.first, t.last
FROM unnest(%(source)s::text[], %(key)s::text[], %(agent)s::bigint[], %(path)s::text[],
            %(first)s::timestamptz[], %(last)s::timestamptz[])
     AS t(source, key, agent, path, first, last)
ORDER BY t.source, t.key
{WIDEN_SESSION}WHERE {
    needs_widening(
        "agent_sessions",
        "excluded.first_activity_at",
        "excluded.last_activity_at",
        "excluded.agent_id",
        "excluded.project_path",
    )
}
"""

SESSION_IDS = """
SELECT s.source, s.session_key, s.id FROM agent_sessions AS s
JOIN unnest(%s::text[], %s::text[]) AS k(source, key)
  ON s.source = k.source AND s.session_key = k.key
WHERE s.company_id = %s
"""


def _sessions(conn: psycopg.Connection[Any], caller: Principal,
              wanted: dict[tuple[str, str], dict[str, Any]]
              ) -> dict[tuple[str, str], int]:  # fmt: skip
    """Create or widen the batch's sessions (sorted, so concurrent batches lock them in one
    order) and return their ids."""
    _check_owned(conn, caller, "agent_sessions", "session_key", wanted, "session")
    ordered = sorted(wanted.items())
    with conn.cursor() as cur:
        cur.execute(UPSERT_SESSIONS, {
            "company": caller.company_id,
            "source": [k[0] for k, _ in ordered], "key": [k[1] for k, _ in ordered],
            **{field: [v[field] for _, v in ordered] for field in ("agent", "path", "first",
                                                                   "last")},
        })  # fmt: skip
        rows = cur.execute(SESSION_IDS, ([k[0] for k, _ in ordered], [k[1] for k, _ in ordered],
                                         caller.company_id)).fetchall()  # fmt: skip
    return {(source, key): session_id for source, key, session_id in rows}


def _session_span(
    records: Sequence[tuple[int, Any, int | None]], at: str
) -> dict[tuple[str, str], dict[str, Any]]:
    wanted: dict[tuple[str, str], dict[str, Any]] = {}
    for _, record, agent_id in records:
        moment = getattr(record, at)
        entry = wanted.setdefault(
            (record.source, record.session_id),
            {
                "agent": agent_id,
                "path": getattr(record, "project_path", None),
                "first": moment,
                "last": moment,
            },
        )
        entry["first"], entry["last"] = min(entry["first"], moment), max(entry["last"], moment)
        entry["agent"] = entry["agent"] or agent_id
    return wanted


# A subagent's session under the session that spawned it, as file ingestion links them: the
# parent is created if the batch is its first news, a link already made is kept, and the
# root is the parent's.
ENSURE_PARENTS = """
INSERT INTO agent_sessions (company_id, source, session_key, agent_id, agent_link,
                            first_activity_at, last_activity_at)
SELECT %(company)s, l.source, l.parent, min(c.agent_id),
       CASE WHEN min(c.agent_id) IS NOT NULL THEN 'api-key' END,
       min(c.first_activity_at), max(c.last_activity_at)
FROM unnest(%(source)s::text[], %(child)s::text[], %(parent)s::text[]) AS l(source, child, parent)
JOIN agent_sessions AS c ON c.company_id = %(company)s AND c.source = l.source
                        AND c.session_key = l.child
GROUP BY l.source, l.parent
ORDER BY l.source, l.parent
ON CONFLICT (company_id, source, session_key) DO NOTHING
"""

LINK_SUBAGENTS = """
UPDATE agent_sessions AS c
SET parent_session_id = p.id, root_session_id = COALESCE(p.root_session_id, p.id),
    is_subagent = true, updated_at = now()
FROM unnest(%(source)s::text[], %(child)s::text[], %(parent)s::text[]) AS l(source, child, parent)
JOIN agent_sessions AS p ON p.company_id = %(company)s AND p.source = l.source
                        AND p.session_key = l.parent
WHERE c.company_id = %(company)s AND c.source = l.source AND c.session_key = l.child
  AND c.parent_session_id IS NULL AND c.id <> p.id
"""


def _subagent_links(records: Iterable[tuple[int, Any, int | None]]) -> set[tuple[str, str, str]]:
    return {(r.source, r.session_id, r.parent_session_id) for _, r, _ in records
            if r.parent_session_id and r.parent_session_id != r.session_id}  # fmt: skip


def _parents(links: set[tuple[str, str, str]]) -> set[tuple[str, str]]:
    return {(source, parent) for source, _, parent in links}


def _link_subagents(conn: psycopg.Connection[Any], caller: Principal,
                    links: set[tuple[str, str, str]]) -> None:  # fmt: skip
    """Link them; the caller has checked, before writing anything, that an agent key owns
    the parents (`_parents`)."""
    if not links:
        return
    sources, children, parents = (list(column) for column in zip(*sorted(links), strict=True))
    params = {"company": caller.company_id, "source": sources, "child": children,
              "parent": parents}  # fmt: skip
    conn.execute(ENSURE_PARENTS, params)
    conn.execute(LINK_SUBAGENTS, params)


def _insert_each(
    cur: psycopg.Cursor[Any],
    sql: str,
    params: list[dict[str, Any]],
    indexes: list[int],
    outcome: Outcome,
) -> None:
    """Write rows one result set each: a returned row is new (or, for a statement that
    merges, changed), none is a duplicate."""
    if not params:
        return
    cur.executemany(sql, params, returning=True)
    for index in indexes:
        outcome.set(index, "accepted" if cur.fetchone() else "duplicate")
        cur.nextset()


def _with_agents(
    directory: Directory, records: Sequence[tuple[int, Any]], outcome: Outcome
) -> list[tuple[int, Any, int | None]]:
    kept = []
    for index, record in records:
        agent = directory.agent(record.agent, index, outcome)
        if agent is not False:
            kept.append((index, record, agent if isinstance(agent, int) else None))
    return kept


USAGE_COLUMNS = (
    ("source", "text"), ("message_id", "text"), ("request_id", "text"),
    ("occurred_at", "timestamptz"), ("provider", "text"), ("model", "text"),
    ("input_tokens", "bigint"), ("output_tokens", "bigint"), ("reasoning_tokens", "bigint"),
    ("cache_read_tokens", "bigint"), ("cache_write_5m_tokens", "bigint"),
    ("cache_write_1h_tokens", "bigint"), ("web_search_requests", "bigint"),
    ("service_tier", "text"), ("reported_cost_usd", "numeric"),
)  # fmt: skip
# One statement, one round trip, one parameter for the whole batch (a JSON array: adapting
# dozens of array parameters costs the client more than the database's whole insert). The
# batch's sessions are created or widened (sorted, so concurrent batches lock them in one
# order), then its events inserted; the keys that were new come back.
INSERT_USAGE = f"""
WITH incoming AS (
    SELECT * FROM ROWS FROM (jsonb_to_recordset(%(rows)s::jsonb) AS (
        session_id text, agent bigint, project_path text,
        {", ".join(f"{c} {kind}" for c, kind in USAGE_COLUMNS)})) WITH ORDINALITY
        AS t(session_id, agent, project_path, {", ".join(c for c, _ in USAGE_COLUMNS)},
             position)
), wanted AS (
    SELECT source, session_id, max(agent) AS agent, max(project_path) AS path,
           min(occurred_at) AS first, max(occurred_at) AS last
    FROM incoming GROUP BY source, session_id
), known AS (
    -- sessions this batch leaves as they are: read, not rewritten (a rewrite per request
    -- would make every event of a busy session queue on its row lock)
    SELECT s.id, s.source, s.session_key FROM agent_sessions AS s
    JOIN wanted AS w ON s.source = w.source AND s.session_key = w.session_id
    WHERE s.company_id = %(company)s
      AND NOT {needs_widening("s", "w.first", "w.last", "w.agent", "w.path")}
), upserted AS (
    -- new sessions, those to widen, and any another transaction created since this
    -- statement's snapshot (the unconditional upsert returns those too)
    INSERT INTO agent_sessions (company_id, source, session_key, agent_id, agent_link,
                                project_path, first_activity_at, last_activity_at)
    SELECT %(company)s, w.source, w.session_id, w.agent,
           CASE WHEN w.agent IS NOT NULL THEN 'api-key' END, w.path, w.first, w.last
    FROM wanted AS w
    WHERE NOT EXISTS (SELECT 1 FROM known AS k
                      WHERE k.source = w.source AND k.session_key = w.session_id)
    ORDER BY w.source, w.session_id
    {WIDEN_SESSION}    RETURNING id, source, session_key
), sessions AS (
    SELECT id, source, session_key FROM known
    UNION ALL SELECT id, source, session_key FROM upserted
)
INSERT INTO token_usage_events (company_id, session_id,
    {", ".join(c for c, _ in USAGE_COLUMNS)}, origin)
SELECT %(company)s, s.id, {", ".join(f"t.{c}" for c, _ in USAGE_COLUMNS)}, 'api'
FROM incoming AS t
JOIN sessions AS s ON s.source = t.source AND s.session_key = t.session_id
ORDER BY t.position
ON CONFLICT (company_id, source, message_id, request_id) DO NOTHING
RETURNING source, message_id, request_id
"""


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return decimal_text(value)
    raise TypeError(type(value).__name__)


def write_usage(conn: psycopg.Connection[Any], caller: Principal,
                records: list[tuple[int, UsageEventIn]], outcome: Outcome) -> None:  # fmt: skip
    kept = _with_agents(Directory(conn, caller), records, outcome)
    if not kept:
        return
    links = _subagent_links(kept)
    if caller.role == "agent":
        _check_owned(conn, caller, "agent_sessions", "session_key",
                     {(r.source, r.session_id) for _, r, _ in kept} | _parents(links),
                     "session")  # fmt: skip
    rows = [{**r.model_dump(exclude={"agent"}), "agent": agent} for _, r, agent in kept]
    payload = orjson.dumps(rows, default=_json).decode()
    # autocommit: the statement is its own transaction, committed before the answer
    new = {tuple(row) for row in conn.execute(
        INSERT_USAGE, {"company": caller.company_id, "rows": payload}).fetchall()}  # fmt: skip
    new_rows = bool(new)
    for index, record, _ in kept:
        key = (record.source, record.message_id, record.request_id)
        # the first copy of a key in the batch is the one stored; later copies repeat it
        outcome.set(index, "accepted" if key in new else "duplicate")
        new.discard(key)
    if new_rows:
        fold_when_due(conn)  # the per-day totals the insert appended to
    _link_subagents(conn, caller, links)


# A call may be posted in halves, as hooks see it (PreToolUse: its start; PostToolUse: its
# end and outcome), or again by a retry: a later post completes the call as the transcript
# loader completes a `tool_use` with its `tool_result`. A post that adds nothing writes
# nothing (`duplicate`). The call keeps the session it was first stored under, as in file
# ingestion (a resumed session's transcript repeats the calls of the one it resumes).
UPSERT_TOOL_CALL = f"""
INSERT INTO tool_calls AS t (company_id, session_id, source, call_key, tool_name, mcp_server,
    started_at, ended_at, duration_ms, success, error_message, result_chars,
    result_tokens_estimate, file_paths, commit_hashes, issue_refs)
VALUES (%(company)s, %(session)s, %(source)s, %(call_id)s, %(tool_name)s, %(mcp_server)s,
    %(started_at)s, %(ended_at)s,
    COALESCE(%(duration_ms)s, (EXTRACT(EPOCH FROM %(ended_at)s::timestamptz
                                       - %(started_at)s::timestamptz) * 1000)::bigint),
    %(success)s, %(error_message)s, %(result_chars)s, %(result_tokens_estimate)s,
    %(file_paths)s, %(commit_hashes)s, %(issue_refs)s)
ON CONFLICT (company_id, source, call_key) DO UPDATE SET
    success = COALESCE(t.success, excluded.success), {WIDEN_TOOL_CALL}
WHERE {ADDS_TO_TOOL_CALL}
RETURNING id
"""

# The posted calls an agent key may not complete: stored under another agent's session.
CALLS_OF_OTHER_AGENTS = """
SELECT k.call_key FROM unnest(%s::text[], %s::text[]) AS k(source, call_key)
JOIN tool_calls AS t ON t.company_id = %s AND t.source = k.source AND t.call_key = k.call_key
JOIN agent_sessions AS s ON s.id = t.session_id
WHERE s.agent_id IS NOT NULL AND s.agent_id <> %s
LIMIT 1
"""


def write_tool_calls(
    conn: psycopg.Connection[Any],
    caller: Principal,
    records: list[tuple[int, ToolCallIn]],
    outcome: Outcome,
) -> None:
    with conn.transaction(), conn.cursor() as cur:
        kept = _with_agents(Directory(conn, caller), records, outcome)
        links = _subagent_links(kept)
        _check_owned(conn, caller, "agent_sessions", "session_key", _parents(links), "session")
        if caller.role == "agent" and kept:
            taken = conn.execute(CALLS_OF_OTHER_AGENTS, (
                [r.source for _, r, _ in kept], [r.call_id for _, r, _ in kept],
                caller.company_id, caller.agent_id)).fetchone()  # fmt: skip
            if taken:
                raise forbidden(f"call {taken[0]!r} belongs to another agent's session")
        sessions = _sessions(conn, caller, _session_span(kept, "seen_at"))
        _link_subagents(conn, caller, links)
        params = [
            {
                "company": caller.company_id,
                "session": sessions[(r.source, r.session_id)],
                **r.model_dump(exclude={"session_id", "agent", "parent_session_id"}),
            }
            for _, r, _ in kept
        ]
        _insert_each(cur, UPSERT_TOOL_CALL, params, [i for i, _, _ in kept], outcome)


# A run's terminal status stands, as Paperclip's own does ("if the run was already terminal,
# that status stands"): a hook's late "running" report, racing the run's end, once moved a
# finished run back to running.
_STATUS = (f"CASE WHEN heartbeat_runs.status IN ({TERMINAL_SQL}) THEN heartbeat_runs.status "
           "ELSE excluded.status END")  # fmt: skip

UPSERT_RUN = f"""
INSERT INTO heartbeat_runs (company_id, source, external_id, agent_id, issue_id,
    adapter_session_key, status, invocation_source, started_at, finished_at, error, error_code,
    exit_code, usage)
VALUES (%(company)s, 'api', %(run_id)s, %(agent)s, %(issue)s, %(adapter_session_id)s,
    %(status)s, %(invocation_source)s, %(started_at)s, %(finished_at)s, %(error)s,
    %(error_code)s, %(exit_code)s, %(usage)s)
ON CONFLICT (company_id, source, external_id) DO UPDATE SET
    agent_id = COALESCE(excluded.agent_id, heartbeat_runs.agent_id),
    issue_id = COALESCE(excluded.issue_id, heartbeat_runs.issue_id),
    adapter_session_key = COALESCE(excluded.adapter_session_key,
                                   heartbeat_runs.adapter_session_key),
    status = {_STATUS}, invocation_source = COALESCE(excluded.invocation_source,
                                                     heartbeat_runs.invocation_source),
    started_at = COALESCE(excluded.started_at, heartbeat_runs.started_at),
    finished_at = COALESCE(excluded.finished_at, heartbeat_runs.finished_at),
    error = COALESCE(excluded.error, heartbeat_runs.error),
    error_code = COALESCE(excluded.error_code, heartbeat_runs.error_code),
    exit_code = COALESCE(excluded.exit_code, heartbeat_runs.exit_code),
    usage = COALESCE(excluded.usage, heartbeat_runs.usage), updated_at = now()
WHERE ROW(heartbeat_runs.status, heartbeat_runs.finished_at, heartbeat_runs.error,
          heartbeat_runs.exit_code, heartbeat_runs.issue_id, heartbeat_runs.usage,
          heartbeat_runs.adapter_session_key, heartbeat_runs.started_at)
      IS DISTINCT FROM
      ROW({_STATUS}, COALESCE(excluded.finished_at, heartbeat_runs.finished_at),
          COALESCE(excluded.error, heartbeat_runs.error),
          COALESCE(excluded.exit_code, heartbeat_runs.exit_code),
          COALESCE(excluded.issue_id, heartbeat_runs.issue_id),
          COALESCE(excluded.usage, heartbeat_runs.usage),
          COALESCE(excluded.adapter_session_key, heartbeat_runs.adapter_session_key),
          COALESCE(excluded.started_at, heartbeat_runs.started_at))
RETURNING id
"""

INSERT_RUN_EVENT = """
INSERT INTO heartbeat_run_events (company_id, run_id, seq, event_type, stream, level, message,
                                  payload, occurred_at)
VALUES (%(company)s, %(run)s, %(seq)s, %(event_type)s, %(stream)s, %(level)s, %(message)s,
        %(payload)s, %(occurred_at)s)
ON CONFLICT (run_id, seq) DO NOTHING
"""


def write_runs(
    conn: psycopg.Connection[Any],
    caller: Principal,
    records: list[tuple[int, HeartbeatRunIn]],
    outcome: Outcome,
) -> None:
    with conn.transaction(), conn.cursor() as cur:
        directory = Directory(conn, caller)
        kept = _with_agents(directory, records, outcome)
        _check_owned(
            conn,
            caller,
            "heartbeat_runs",
            "external_id",
            (("api", r.run_id) for _, r, _ in kept),
            "run",
        )
        for index, run, agent in kept:
            issue = None
            if run.issue is not None:
                issue, problem = directory.issue(run.issue)
                if problem:
                    outcome.reject(index, problem)
                    continue
            row = cur.execute(
                UPSERT_RUN,
                {
                    "company": caller.company_id,
                    "agent": agent,
                    "issue": issue,
                    **run.model_dump(exclude={"events", "agent", "issue", "usage"}),
                    "usage": Jsonb(run.usage) if run.usage is not None else None,
                },
            ).fetchone()
            changed = row is not None
            if row is None:
                row = cur.execute(
                    """SELECT id FROM heartbeat_runs
                       WHERE company_id = %s AND source = 'api' AND external_id = %s""",
                    (caller.company_id, run.run_id),
                ).fetchone()
            assert row is not None
            new_events = 0
            for event in run.events:
                cur.execute(
                    INSERT_RUN_EVENT,
                    {
                        "company": caller.company_id,
                        "run": row[0],
                        **event.model_dump(exclude={"payload"}),
                        "payload": Jsonb(event.payload) if event.payload is not None else None,
                    },
                )
                new_events += cur.rowcount
            outcome.set(index, "accepted" if changed or new_events else "duplicate")


INSERT_HINT = """
INSERT INTO attribution_hints (company_id, hint_key, session_key, agent_id, issue_id,
                               valid_from, valid_to, origin, note, created_by_key_id)
VALUES (%(company)s, %(hint_id)s, %(session_id)s, %(agent)s, %(issue)s, %(valid_from)s,
        %(valid_to)s, 'api', %(note)s, %(key)s)
ON CONFLICT (company_id, hint_key) DO NOTHING
RETURNING id
"""


def write_hints(
    conn: psycopg.Connection[Any],
    caller: Principal,
    records: list[tuple[int, AttributionHintIn]],
    outcome: Outcome,
) -> None:
    with conn.transaction(), conn.cursor() as cur:
        directory = Directory(conn, caller)
        kept = _with_agents(directory, records, outcome)
        sessions = [
            (source, r.session_id)
            for _, r, _ in kept
            if r.session_id
            for source in ("api", "claude_code", "codex")
        ]
        _check_owned(conn, caller, "agent_sessions", "session_key", sessions, "session")
        params, indexes = [], []
        for index, hint, agent in kept:
            issue, problem = directory.issue(hint.issue)
            if problem:
                outcome.reject(index, problem)
                continue
            params.append(
                {
                    "company": caller.company_id,
                    "agent": agent,
                    "issue": issue,
                    "key": caller.key_id,
                    **hint.model_dump(exclude={"agent", "issue"}),
                }
            )
            indexes.append(index)
        _insert_each(cur, INSERT_HINT, params, indexes, outcome)
