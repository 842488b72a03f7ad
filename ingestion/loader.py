"""Write parsed records to the canonical store: COPY into staging, then one merge per table,
the file cursors and the rejects, all in one transaction per batch.

Parsing (in worker processes) deduplicates what it can within a piece and encodes COPY
rows; everything across pieces, files and runs is settled here in SQL. Every merge is
order-independent, so re-reading any input, in any order, after any crash, yields the same
rows:
- usage: per (message_id, request_id) the whole most complete copy wins (most tokens, then
  most output, reported cost, speed, origin; then the smallest file position), and the time
  is the earliest seen; `/btw` sidechain replays of a non-sidechain message are dropped;
- tool calls: both halves fill in whichever fields they know; times are the earliest seen;
- sessions: activity spans only widen; descriptive fields come from the earliest activity.
"""

from __future__ import annotations

import hashlib
import socket
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
import psycopg

from ingestion.adapters.records import RejectRecord
from ingestion.batch import Batch
from ingestion.copy import copy_bytes, encode_rows
from ingestion.reject_limit import RejectLimit
from ingestion.rejects import RejectRow, store_rejects
from ingestion.table_statistics import TableStatistics, vacuum
from ingestion.tool_call_merge import WIDEN_TOOL_CALL
from ingestion.usage_day_deltas import fold_usage_day_deltas

STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS stage_sessions (
    session_key text, parent_key text, is_subagent boolean, subagent_key text,
    project_path text, git_branch text, client_version text, described_at timestamptz,
    first_at timestamptz, last_at timestamptz, source_path text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_session_ids (
    session_key text PRIMARY KEY, id bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_usage (
    session_key text, message_id text, request_id text, occurred_at timestamptz,
    provider text, model text, input_tokens bigint, output_tokens bigint,
    reasoning_tokens bigint, cache_read_tokens bigint, cache_write_5m_tokens bigint,
    cache_write_1h_tokens bigint, web_search_requests bigint, service_tier text, speed text,
    reported_cost_usd numeric, is_sidechain boolean, origin text, source_path text,
    source_offset bigint
) ON COMMIT DELETE ROWS;
CREATE INDEX IF NOT EXISTS stage_usage_message_id ON stage_usage (message_id);
CREATE TEMP TABLE IF NOT EXISTS stage_tools (
    call_key text, session_key text, message_id text, tool_name text, mcp_server text,
    started_at timestamptz, ended_at timestamptz, success boolean, error_message text,
    result_chars bigint, result_tokens_estimate bigint, file_paths text[],
    commit_hashes text[], issue_refs text[], source_path text
) ON COMMIT DELETE ROWS;
"""

SESSION_COLUMNS = (
    "session_key", "parent_key", "is_subagent", "subagent_key", "project_path", "git_branch",
    "client_version", "described_at", "first_at", "last_at", "source_path",
)  # fmt: skip
USAGE_COLUMNS = (
    "session_key", "message_id", "request_id", "occurred_at", "provider", "model",
    "input_tokens", "output_tokens", "reasoning_tokens", "cache_read_tokens",
    "cache_write_5m_tokens", "cache_write_1h_tokens", "web_search_requests", "service_tier",
    "speed", "reported_cost_usd", "is_sidechain", "origin", "source_path", "source_offset",
)  # fmt: skip
TOOL_COLUMNS = (
    "call_key", "session_key", "message_id", "tool_name", "mcp_server", "started_at",
    "ended_at", "success", "error_message", "result_chars", "result_tokens_estimate",
    "file_paths", "commit_hashes", "issue_refs", "source_path",
)  # fmt: skip


# The description (cwd, branch, version) comes whole from the earliest line naming a cwd,
# ties broken by the values: the same total order as SessionRecord.describe.
_DESCRIPTION_RANK = (
    "ROW(COALESCE({p}.described_at, 'infinity'::timestamptz), {p}.project_path, "
    "COALESCE({p}.git_branch, ''), COALESCE({p}.client_version, ''))"
)
_NEW_DESCRIPTION_WINS = (
    "(excluded.project_path IS NOT NULL AND (t.project_path IS NULL OR "
    + _DESCRIPTION_RANK.format(p="excluded")
    + " < "
    + _DESCRIPTION_RANK.format(p="t")
    + "))"
)
_DESCRIBE = "CASE WHEN " + _NEW_DESCRIPTION_WINS + " THEN excluded.{col} ELSE t.{col} END"

INSERT_PARENT_STUBS = """
INSERT INTO agent_sessions (company_id, source, session_key)
SELECT DISTINCT %(company)s, %(source)s, parent_key FROM stage_sessions
WHERE parent_key IS NOT NULL
ORDER BY 3
ON CONFLICT (company_id, source, session_key) DO NOTHING
"""

MERGE_SESSIONS = f"""
WITH described AS (
    SELECT DISTINCT ON (session_key) session_key, described_at, project_path, git_branch,
           client_version
    FROM stage_sessions WHERE project_path IS NOT NULL
    ORDER BY session_key, described_at NULLS LAST, project_path, COALESCE(git_branch, ''),
             COALESCE(client_version, '')
), staged AS (
    SELECT session_key, max(parent_key) AS parent_key, bool_or(is_subagent) AS is_subagent,
           max(subagent_key) AS subagent_key, min(first_at) AS first_at,
           max(last_at) AS last_at, min(source_path) AS source_path
    FROM stage_sessions GROUP BY session_key
), merged AS (
    INSERT INTO agent_sessions AS t (
        company_id, source, session_key, is_subagent, subagent_key, project_path, git_branch,
        client_version, described_at, first_activity_at, last_activity_at, source_path)
    SELECT %(company)s, %(source)s, s.session_key, s.is_subagent, s.subagent_key,
           d.project_path, d.git_branch, d.client_version, d.described_at, s.first_at,
           s.last_at, s.source_path
    FROM staged AS s LEFT JOIN described AS d ON d.session_key = s.session_key
    ORDER BY s.session_key
    ON CONFLICT (company_id, source, session_key) DO UPDATE SET
        is_subagent = t.is_subagent OR excluded.is_subagent,
        subagent_key = COALESCE(t.subagent_key, excluded.subagent_key),
        project_path = {_DESCRIBE.format(col="project_path")},
        git_branch = {_DESCRIBE.format(col="git_branch")},
        client_version = {_DESCRIBE.format(col="client_version")},
        described_at = {_DESCRIBE.format(col="described_at")},
        source_path = LEAST(t.source_path, excluded.source_path),
        first_activity_at = LEAST(t.first_activity_at, excluded.first_activity_at),
        last_activity_at = GREATEST(t.last_activity_at, excluded.last_activity_at),
        updated_at = now()
    RETURNING session_key, id
)
INSERT INTO stage_session_ids SELECT session_key, id FROM merged
"""

# Driven from the batch's own rows: the child by its id (stage_session_ids), the parent by
# the unique key, one index probe each, whatever the planner believes of agent_sessions.
LINK_PARENTS = """
UPDATE agent_sessions AS c SET parent_session_id = l.parent_id
FROM (SELECT i.id AS child_id,
             (SELECT p.id FROM agent_sessions AS p
              WHERE p.company_id = %(company)s AND p.source = %(source)s
                AND p.session_key = s.parent_key) AS parent_id
      FROM (SELECT DISTINCT session_key, parent_key FROM stage_sessions
            WHERE parent_key IS NOT NULL) AS s
      JOIN stage_session_ids AS i ON i.session_key = s.session_key) AS l
WHERE c.id = l.child_id AND l.parent_id IS NOT NULL
  AND c.parent_session_id IS DISTINCT FROM l.parent_id
"""

ROOT_TOP_LEVEL = """
UPDATE agent_sessions SET root_session_id = id
WHERE company_id = %(company)s AND source = %(source)s AND parent_session_id IS NULL
  AND root_session_id IS NULL
  AND session_key IN (SELECT session_key FROM stage_sessions
                      UNION SELECT parent_key FROM stage_sessions)
"""

# The roots of the batch's session trees, walked down from the batch's topmost sessions
# (those whose parent, if any, is not in the batch and so already has its root): every
# session of the batch and every session under one, stored earlier or now, as a parent may
# gain its own parent in a later batch. Only those trees are read, through the primary key
# and the index on parent_session_id; the sessions to change are then found by their ids
# (`= ANY`), which keeps the planner from hashing every session of the store to join a few
# dozen (it estimates a recursive query's rows at ten times its start).
PROPAGATE_ROOTS = """
WITH RECURSIVE tree (id, root, current_root) AS (
    SELECT c.id, COALESCE(p.root_session_id, p.id, c.id), c.root_session_id
    FROM stage_session_ids AS i
    JOIN agent_sessions AS c ON c.id = i.id
    LEFT JOIN agent_sessions AS p ON p.id = c.parent_session_id
    WHERE c.parent_session_id IS NULL
       OR c.parent_session_id NOT IN (SELECT id FROM stage_session_ids)
  UNION
    SELECT child.id, tree.root, child.root_session_id
    FROM tree JOIN agent_sessions AS child ON child.parent_session_id = tree.id
), changed AS MATERIALIZED (
    SELECT id, root FROM tree WHERE current_root IS DISTINCT FROM root
)
UPDATE agent_sessions AS s SET root_session_id = changed.root
FROM changed
WHERE s.id = ANY (ARRAY(SELECT id FROM changed)) AND s.id = changed.id
"""

_TOTAL = (
    "({p}.input_tokens + {p}.output_tokens + {p}.cache_read_tokens"
    " + {p}.cache_write_5m_tokens + {p}.cache_write_1h_tokens)"
)
_ORIGIN_RANK = (
    "(CASE {p}.origin WHEN 'subagent_file' THEN 2 WHEN 'agent_progress' THEN 0 ELSE 1 END)"
)
_RANK = (
    "ROW(" + _TOTAL + ", {p}.output_tokens, COALESCE({p}.reported_cost_usd, 0), "
    "{p}.speed IS NOT NULL, " + _ORIGIN_RANK + ")"
)
NEW_COPY_WINS = (
    f"({_RANK.format(p='excluded')} > {_RANK.format(p='t')} OR "
    f"({_RANK.format(p='excluded')} = {_RANK.format(p='t')} AND "
    "ROW(excluded.source_path, excluded.source_offset) < ROW(t.source_path, t.source_offset)))"
)
_WINNER_COLUMNS = (
    "session_id", "provider", "model", "input_tokens", "output_tokens", "reasoning_tokens",
    "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens",
    "web_search_requests", "service_tier", "speed", "reported_cost_usd", "is_sidechain",
    "origin", "source_path", "source_offset", "ingestion_run_id",
)  # fmt: skip
_EVENT_COLUMNS = (
    "company_id", "source", "message_id", "request_id", "occurred_at", *_WINNER_COLUMNS,
)  # fmt: skip

DROP_SIDECHAIN_REPLAYS = """
DELETE FROM token_usage_events AS e
USING stage_usage AS s
WHERE e.company_id = %(company)s AND e.source = %(source)s AND e.message_id = s.message_id
  AND e.request_id <> s.request_id AND e.is_sidechain AND NOT s.is_sidechain
"""

MERGE_USAGE = f"""
WITH merged AS (
INSERT INTO token_usage_events AS t ({", ".join(_EVENT_COLUMNS)})
SELECT DISTINCT ON (s.message_id, s.request_id)
       %(company)s, %(source)s, s.message_id, s.request_id,
       min(s.occurred_at) OVER (PARTITION BY s.message_id, s.request_id),
       i.id, s.provider, s.model, s.input_tokens, s.output_tokens, s.reasoning_tokens,
       s.cache_read_tokens, s.cache_write_5m_tokens, s.cache_write_1h_tokens,
       s.web_search_requests, s.service_tier, s.speed, s.reported_cost_usd, s.is_sidechain,
       s.origin, s.source_path, s.source_offset, %(run)s
FROM stage_usage AS s
JOIN stage_session_ids AS i ON i.session_key = s.session_key
WHERE NOT (s.is_sidechain AND (
    EXISTS (SELECT 1 FROM stage_usage AS o
            WHERE o.message_id = s.message_id AND o.request_id <> s.request_id
              AND NOT o.is_sidechain)
    OR EXISTS (SELECT 1 FROM token_usage_events AS o
               WHERE o.company_id = %(company)s AND o.source = %(source)s
                 AND o.message_id = s.message_id AND o.request_id <> s.request_id
                 AND NOT o.is_sidechain)))
ORDER BY s.message_id, s.request_id, {_RANK.format(p="s")} DESC, s.source_path, s.source_offset
ON CONFLICT (company_id, source, message_id, request_id) DO UPDATE SET
    occurred_at = LEAST(t.occurred_at, excluded.occurred_at),
    {
    ", ".join(
        f"{c} = CASE WHEN {NEW_COPY_WINS} THEN excluded.{c} ELSE t.{c} END" for c in _WINNER_COLUMNS
    )
},
    updated_at = now()
RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FROM merged
"""

# The two halves of a call (tool_use, tool_result) usually arrive in one piece, already
# merged; when they do not, the later copies merge in further passes through the same
# ON CONFLICT rules (one statement may not touch a row twice).
MOST_COPIES_OF_A_TOOL_CALL = (
    "SELECT COALESCE(max(n), 0) FROM (SELECT count(*) AS n FROM stage_tools GROUP BY call_key) c"
)

MERGE_TOOLS = f"""
WITH merged AS (
INSERT INTO tool_calls AS t (
    company_id, source, call_key, session_id, message_id, tool_name, mcp_server, started_at,
    ended_at, duration_ms, success, error_message, result_chars, result_tokens_estimate,
    file_paths, commit_hashes, issue_refs, source_path)
SELECT %(company)s, %(source)s, s.call_key, i.id, s.message_id, s.tool_name, s.mcp_server,
       s.started_at, s.ended_at,
       (EXTRACT(EPOCH FROM (s.ended_at - s.started_at)) * 1000)::bigint,
       s.success, s.error_message, s.result_chars, s.result_tokens_estimate,
       s.file_paths, s.commit_hashes, s.issue_refs, s.source_path
FROM (SELECT *, row_number() OVER (PARTITION BY call_key ORDER BY source_path, started_at)
             AS copy
      FROM stage_tools) AS s
LEFT JOIN stage_session_ids AS i ON i.session_key = s.session_key
WHERE s.copy = %(copy)s
ORDER BY s.call_key
ON CONFLICT (company_id, source, call_key) DO UPDATE SET
    session_id = COALESCE(t.session_id, excluded.session_id),
    message_id = COALESCE(t.message_id, excluded.message_id),
    source_path = COALESCE(t.source_path, excluded.source_path),
    success = COALESCE(excluded.success, t.success), {WIDEN_TOOL_CALL}
RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FROM merged
"""

# A run whose database session is gone was killed: say so instead of "running" (the partial
# index ix_ingestion_runs_running finds the few still marked running among all runs ever).
MARK_INTERRUPTED_RUNS = """
UPDATE ingestion_runs SET status = 'interrupted', finished_at = now()
WHERE status = 'running' AND pid NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)
"""


def _excerpt(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").replace("\x00", "")


# One statement for a batch's cursors (one row per file: the batch's last word on it).
UPSERT_CURSORS = """
INSERT INTO ingestion_cursors (source, path, file_identity, file_size, file_mtime_ns,
                               byte_offset, head_fingerprint, tail_fingerprint, state,
                               last_run_id)
SELECT %(source)s, c.path, c.identity, c.size, c.mtime, c.byte_offset, c.fingerprint, c.tail,
       c.state, %(run)s
FROM unnest(%(path)s::text[], %(identity)s::text[], %(size)s::bigint[], %(mtime)s::bigint[],
            %(offset)s::bigint[], %(fingerprint)s::text[], %(tail)s::text[], %(state)s::jsonb[])
     AS c(path, identity, size, mtime, byte_offset, fingerprint, tail, state)
ON CONFLICT (source, path) DO UPDATE SET
    file_identity = excluded.file_identity, file_size = excluded.file_size,
    file_mtime_ns = excluded.file_mtime_ns, byte_offset = excluded.byte_offset,
    head_fingerprint = excluded.head_fingerprint, tail_fingerprint = excluded.tail_fingerprint,
    state = excluded.state,
    last_run_id = excluded.last_run_id, updated_at = now()
"""


@dataclass
class EncodedBatch:
    """Records ready for COPY, as parsing produced them (possibly from several pieces)."""

    usage: list[bytes] = field(default_factory=list)
    tools: list[bytes] = field(default_factory=list)
    sessions: list[bytes] = field(default_factory=list)
    rejects: list[RejectRecord] = field(default_factory=list)
    usage_rows: int = 0
    tool_rows: int = 0
    merged_in_parsing: int = 0

    @property
    def rows(self) -> int:
        return self.usage_rows + self.tool_rows + len(self.rejects)

    def is_empty(self) -> bool:
        return not (self.usage or self.tools or self.sessions or self.rejects)

    def absorb(self, other: EncodedBatch) -> None:
        self.usage.extend(other.usage)
        self.tools.extend(other.tools)
        self.sessions.extend(other.sessions)
        self.rejects.extend(other.rejects)
        self.usage_rows += other.usage_rows
        self.tool_rows += other.tool_rows
        self.merged_in_parsing += other.merged_in_parsing


def encode_batch(batch: Batch) -> EncodedBatch:
    batch.drop_sidechain_replays()
    encoded = EncodedBatch(rejects=batch.rejects, merged_in_parsing=batch.merged_in_batch)
    if batch.sessions:
        encoded.sessions.append(encode_rows(
            (s.session_key, s.parent_key, s.is_subagent, s.subagent_key, s.project_path,
             s.git_branch, s.client_version, s.described_at, s.first_at, s.last_at,
             s.source_path)
            for s in batch.sessions.values()
        ))  # fmt: skip
    if batch.usage:
        encoded.usage.append(encode_rows(
            (u.session_key, u.message_id, u.request_id, u.occurred_at, u.provider, u.model,
             u.input_tokens, u.output_tokens, u.reasoning_tokens, u.cache_read_tokens,
             u.cache_write_5m_tokens, u.cache_write_1h_tokens, u.web_search_requests,
             u.service_tier, u.speed, u.reported_cost_usd, u.is_sidechain, u.origin,
             u.source_path, u.source_offset)
            for u in batch.usage.values()
        ))  # fmt: skip
        encoded.usage_rows = len(batch.usage)
    if batch.tool_calls:
        encoded.tools.append(encode_rows(
            (t.call_key, t.session_key, t.message_id, t.tool_name, t.mcp_server, t.started_at,
             t.ended_at, t.success, t.error_message, t.result_chars, t.result_tokens_estimate,
             t.file_paths, t.commit_hashes, t.issue_refs, t.source_path)
            for t in batch.tool_calls.values()
        ))  # fmt: skip
        encoded.tool_rows = len(batch.tool_calls)
    return encoded


class FileCursor(NamedTuple):
    """How far a file has been read (`ingestion_cursors`): as the last run left it, and as a
    batch records it."""

    path: str
    file_identity: str
    file_size: int
    file_mtime_ns: int
    byte_offset: int
    head_fingerprint: str
    tail_fingerprint: str | None  # NULL in cursors written before revision 0008
    state: dict[str, Any] | None


@dataclass(slots=True)
class LoadResult:
    events_new: int = 0
    events_merged: int = 0
    tool_calls_new: int = 0
    # rows the merges wrote: a call whose halves arrive in two batches (or runs) twice
    tool_calls_seen: int = 0
    sessions: int = 0
    rejects: int = 0


def ensure_company(conn: psycopg.Connection[Any], slug: str) -> int:
    row = conn.execute(
        """INSERT INTO companies (slug, name) VALUES (%s, %s)
           ON CONFLICT (slug) DO UPDATE SET slug = excluded.slug RETURNING id""",
        (slug, slug),
    ).fetchone()
    assert row is not None
    return int(row[0])


# Cursors forgotten at once from which the table is vacuumed straight away.
VACUUM_AFTER_FORGETTING = 1_000


class CanonicalLoader:
    """Loads batches for one source and company over one connection."""

    def __init__(self, conn: psycopg.Connection[Any], company_id: int, source: str) -> None:
        self.conn = conn
        self.company_id = company_id
        self.source = source
        self.params: dict[str, Any] = {"company": company_id, "source": source, "run": None}
        # Autocommit outside the explicit batch transactions: locks and bookkeeping
        # statements then cost one round trip each.
        conn.autocommit = True
        # A batch commits together with the cursors that say it was read, so a server crash
        # can only lose both at once; the next run reads those bytes again. The commit
        # need not wait for the WAL flush.
        conn.execute("SET synchronous_commit = off")
        # The merges' cost estimates pass the JIT threshold, but compiling them takes longer
        # (about 0.2 s a statement) than running them; their sorts fit in memory with room.
        conn.execute("SET jit = off")
        conn.execute("SET work_mem = '64MB'")
        self.staging_ready = False
        self.statistics = TableStatistics(conn)
        self.reject_limit = RejectLimit()

    # -- runs -------------------------------------------------------------------------------
    def start_run(self, arguments: dict[str, Any]) -> int:
        self._mark_interrupted_runs()
        row = self.conn.execute(
            """INSERT INTO ingestion_runs (source, started_at, arguments, host, pid)
               VALUES (%s, now(), %s, %s, pg_backend_pid()) RETURNING id""",
            (self.source, orjson.dumps(arguments).decode(), socket.gethostname()),
        ).fetchone()
        assert row is not None
        self.params["run"] = int(row[0])
        return int(row[0])

    def _mark_interrupted_runs(self) -> None:
        self.conn.execute(MARK_INTERRUPTED_RUNS)

    def finish_run(self, status: str, counters: dict[str, int], error: str | None = None) -> None:
        assignments = ", ".join(f"{name} = %({name})s" for name in counters)
        self.conn.execute(
            f"""UPDATE ingestion_runs SET status = %(status)s, finished_at = now(),
                error = %(error)s{", " + assignments if assignments else ""}
                WHERE id = %(run)s""",
            {**counters, "status": status, "error": error, "run": self.params["run"]},
        )
        fold_usage_day_deltas(self.conn)

    # -- locks ------------------------------------------------------------------------------
    def try_lock_files(self, paths: list[str]) -> list[str]:
        """Take the advisory lock of each file another run is not reading; return those."""
        if not paths:
            return []
        rows = self.conn.execute(
            """SELECT p FROM unnest(%s::text[]) WITH ORDINALITY AS f(p, n)
               WHERE pg_try_advisory_lock(hashtextextended(%s || ':' || p, 0))
               ORDER BY n""",
            (paths, self.source),
        ).fetchall()
        return [row[0] for row in rows]

    def lock_file_waiting(self, path: str, timeout_seconds: int) -> bool:
        """Wait up to `timeout_seconds` for a file another run (or a run's dying backend)
        holds. False when it did not come free in time, or when the holder is waiting for a
        file this run holds (two runs at the end of their lists, each still holding its batch's
        files): PostgreSQL breaks that deadlock by failing one wait, whose run then leaves the
        file to its holder, which reads it."""
        try:
            with self.conn.transaction():
                self.conn.execute(f"SET LOCAL lock_timeout = '{int(timeout_seconds)}s'")
                self.conn.execute(
                    "SELECT pg_advisory_lock(hashtextextended(%s || ':' || %s, 0))",
                    (self.source, path),
                )
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
            return False
        return True

    def release_all_files(self) -> None:
        """Let go of every file lock now, rather than when the server notices we left."""
        self.conn.execute("SELECT pg_advisory_unlock_all()")

    def unlock_files(self, paths: list[str]) -> None:
        if paths:
            self.conn.execute(
                """SELECT pg_advisory_unlock(hashtextextended(%s || ':' || p, 0))
                   FROM unnest(%s::text[]) AS p""",
                (self.source, paths),
            )

    def load_file_states(self) -> dict[str, tuple[str, int, int]]:
        """What each known file looked like when last read: identity, size, mtime."""
        rows = self.conn.execute(
            """SELECT path, file_identity, file_size, file_mtime_ns
               FROM ingestion_cursors WHERE source = %s""",
            (self.source,),
        ).fetchall()
        return {row[0]: (row[1], row[2], row[3]) for row in rows}

    def forget_files(self, paths: list[str]) -> int:
        """Drop the cursors of files that are gone (Claude Code deletes transcripts after 30
        days); returns how many. Kept, every run loaded them all: a year of deleted
        transcripts made a no-change run 0.5 s slower. What was read from the files stays. A
        cursor written since this run started (another run read a file made after this run
        listed its directory) is kept."""
        if not paths:
            return 0
        cursor = self.conn.execute(
            """DELETE FROM ingestion_cursors
               WHERE source = %(source)s AND path = ANY(%(paths)s)
                 AND updated_at < (SELECT started_at FROM ingestion_runs WHERE id = %(run)s)""",
            {**self.params, "paths": paths},
        )
        if cursor.rowcount >= VACUUM_AFTER_FORGETTING:
            # Every run reads the table whole: where autovacuum is off (or behind), the dead
            # rows of a large deletion kept the next runs reading them (200,000 forgotten
            # cursors: 48 ms a read instead of 4.5 ms).
            vacuum(self.conn, "ingestion_cursors")
        return cursor.rowcount

    def load_cursors(self, paths: list[str]) -> dict[str, FileCursor]:
        if not paths:
            return {}
        rows = self.conn.execute(
            """SELECT path, file_identity, file_size, file_mtime_ns, byte_offset,
                      head_fingerprint, tail_fingerprint, state
               FROM ingestion_cursors WHERE source = %s AND path = ANY(%s)""",
            (self.source, paths),
        ).fetchall()
        return {row[0]: FileCursor(*row) for row in rows}

    # -- batches ----------------------------------------------------------------------------
    def flush(self, batch: EncodedBatch, cursors: list[FileCursor]) -> LoadResult:
        result = LoadResult()
        if not self.staging_ready:
            self.conn.execute(STAGING_DDL)
            self.staging_ready = True
        # counted once the transaction commits: a batch that rolls back is split again
        recorded, limit = self.reject_limit.split(batch.rejects)
        with self.conn.transaction(), self.conn.cursor() as cur:
            if batch.sessions:
                copy_bytes(cur, "stage_sessions", SESSION_COLUMNS, batch.sessions)
                cur.execute("ANALYZE stage_sessions (session_key, parent_key)")
                cur.execute(INSERT_PARENT_STUBS, self.params)
                cur.execute(MERGE_SESSIONS, self.params)
                result.sessions = cur.rowcount
                cur.execute("ANALYZE stage_session_ids")
                cur.execute(LINK_PARENTS, self.params)
                cur.execute(ROOT_TOP_LEVEL, self.params)
                cur.execute(PROPAGATE_ROOTS)
            if batch.usage:
                copy_bytes(cur, "stage_usage", USAGE_COLUMNS, batch.usage)
                cur.execute("ANALYZE stage_usage (session_key, message_id, request_id)")
                cur.execute(DROP_SIDECHAIN_REPLAYS, self.params)
                cur.execute(MERGE_USAGE, self.params)
                counts = cur.fetchone()
                result.events_new = int(counts[0]) if counts else 0
                result.events_merged = batch.usage_rows - result.events_new
            result.events_merged += batch.merged_in_parsing
            if batch.tools:
                copy_bytes(cur, "stage_tools", TOOL_COLUMNS, batch.tools)
                cur.execute("ANALYZE stage_tools (call_key, session_key)")
                copies = cur.execute(MOST_COPIES_OF_A_TOOL_CALL).fetchone()
                for copy in range(1, (copies[0] if copies else 0) + 1):
                    merged = cur.execute(MERGE_TOOLS, {**self.params, "copy": copy}).fetchone()
                    result.tool_calls_new += int(merged[0]) if merged else 0
                    result.tool_calls_seen += int(merged[1]) if merged and copy == 1 else 0
            if batch.rejects:
                run = self.params["run"]
                store_rejects(cur, run, self.source, [
                    RejectRow(r.location, r.position, r.reason, _excerpt(r.excerpt),
                              hashlib.sha1(r.excerpt).hexdigest())
                    for r in recorded
                ])  # fmt: skip
                store_rejects(cur, run, self.source, [
                    RejectRow(u.first.location, u.first.position, u.reason(),
                              _excerpt(u.first.excerpt), u.fingerprint(run))
                    for u in limit.grown(self.reject_limit)
                ], rewrite_reason=True)  # fmt: skip
                result.rejects = len(batch.rejects)
            if cursors:
                latest = list({c.path: c for c in cursors}.values())
                cur.execute(UPSERT_CURSORS, {
                    "source": self.source, "run": self.params["run"],
                    "path": [c.path for c in latest],
                    "identity": [c.file_identity for c in latest],
                    "size": [c.file_size for c in latest],
                    "mtime": [c.file_mtime_ns for c in latest],
                    "offset": [c.byte_offset for c in latest],
                    "fingerprint": [c.head_fingerprint for c in latest],
                    "tail": [c.tail_fingerprint for c in latest],
                    "state": [orjson.dumps(c.state or {}).decode() for c in latest],
                })  # fmt: skip
        self.reject_limit = limit
        self.statistics.grew("agent_sessions", result.sessions)
        self.statistics.grew("token_usage_events", result.events_new)
        self.statistics.refresh()
        return result
