"""Load a `WorkGraph` into the canonical store: idempotent upserts on each table's natural key
(company, source, upstream id), references resolved to canonical ids, dangling required
references and keys too long to index rejected with the reason. A row is rewritten only when
something in it changed, so loading the same upstream twice changes nothing and reports zero
changes."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from ingestion.git_commits import CommitRow, upsert_commits
from ingestion.loader import ensure_company
from ingestion.rejects import RejectRow, store_rejects
from ingestion.table_statistics import analyse_grown
from ingestion.usage_day_deltas import fold_usage_day_deltas
from ingestion.workgraph.records import WorkGraph, row_excerpt
from schemas.limits import MAX_KEY_CHARS, key_too_long

Key = tuple[Any, ...]


@dataclass(frozen=True)
class Ref:
    """A record field naming another record by its upstream id. A missing required reference,
    or any reference naming a record that does not exist, rejects the record."""

    field: str
    column: str
    entity: str
    required: bool = False


@dataclass(frozen=True)
class Table:
    name: str  # canonical table
    graph_field: str  # WorkGraph attribute holding its records
    entity: str | None  # entity name other tables refer to it by
    conflict: tuple[str, ...]  # natural key after company_id
    columns: tuple[str, ...]  # written from the record as is
    refs: tuple[Ref, ...] = ()
    json_columns: frozenset[str] = frozenset()
    has_source: bool = True
    has_updated_at: bool = True
    company_in_key: bool = True


AGENTS = Table("agents", "agents", "agents", ("source", "external_id"),
               ("external_id", "name", "role", "title", "status", "adapter_type", "attributes"),
               json_columns=frozenset({"attributes"}))  # fmt: skip
GOALS = Table("goals", "goals", "goals", ("source", "external_id"),
              ("external_id", "title", "level", "status"),
              (Ref("owner_agent", "owner_agent_id", "agents"),))  # fmt: skip
PROJECTS = Table("projects", "projects", "projects", ("source", "external_id"),
                 ("external_id", "name", "key", "status", "workspace_path", "repo_url",
                  "attributes", "archived_at"),
                 (Ref("goal", "goal_id", "goals"),),
                 json_columns=frozenset({"attributes"}))  # fmt: skip
ISSUES = Table("issues", "issues", "issues", ("source", "external_id"),
               ("external_id", "number", "identifier", "title", "status", "priority",
                "billing_code", "attributes", "created_at", "updated_at", "started_at",
                "completed_at", "cancelled_at"),
               (Ref("project", "project_id", "projects"), Ref("goal", "goal_id", "goals"),
                Ref("assignee_agent", "assignee_agent_id", "agents")),
               json_columns=frozenset({"attributes"}), has_updated_at=False)  # fmt: skip
STATUS_CHANGES = Table("issue_status_changes", "status_changes", None, ("source", "external_id"),
                       ("external_id", "from_status", "to_status", "changed_at", "actor_type",
                        "session_key"),
                       (Ref("issue", "issue_id", "issues", required=True),
                        Ref("actor_agent", "actor_agent_id", "agents")),
                       has_updated_at=False)  # fmt: skip
ACTIVITY = Table("issue_activity", "activity", None, ("source", "external_id"),
                 ("external_id", "action", "details", "actor_type", "session_key",
                  "occurred_at"),
                 (Ref("issue", "issue_id", "issues", required=True),
                  Ref("actor_agent", "actor_agent_id", "agents")),
                 has_updated_at=False)  # fmt: skip
SESSIONS = Table("agent_sessions", "sessions", "sessions", ("source", "session_key"),
                 ("session_key", "project_path", "first_activity_at", "last_activity_at",
                  "project_link", "agent_link", "attributes"),
                 (Ref("project", "project_id", "projects"), Ref("agent", "agent_id", "agents")),
                 json_columns=frozenset({"attributes"}))  # fmt: skip
USAGE = Table("token_usage_events", "usage", None, ("source", "message_id", "request_id"),
              ("message_id", "request_id", "occurred_at", "provider", "model", "input_tokens",
               "output_tokens", "reasoning_tokens", "cache_read_tokens",
               "cache_write_5m_tokens", "cache_write_1h_tokens", "origin"),
              (Ref("session", "session_id", "sessions", required=True),))  # fmt: skip
TOOL_CALLS = Table("tool_calls", "tool_calls", None, ("source", "call_key"),
                   ("call_key", "tool_name", "mcp_server", "started_at", "ended_at",
                    "duration_ms", "success", "error_message", "result_chars",
                    "result_tokens_estimate"),
                   (Ref("session", "session_id", "sessions"),))  # fmt: skip
HEARTBEAT_RUNS = Table("heartbeat_runs", "heartbeat_runs", "runs", ("source", "external_id"),
                       ("external_id", "adapter_session_key", "status", "invocation_source",
                        "started_at", "finished_at", "error", "error_code", "exit_code",
                        "usage", "result", "context"),
                       (Ref("agent", "agent_id", "agents"), Ref("issue", "issue_id", "issues")),
                       json_columns=frozenset({"usage", "result", "context"}))  # fmt: skip
RUN_EVENTS = Table("heartbeat_run_events", "run_events", None, ("run_id", "seq"),
                   ("seq", "event_type", "stream", "level", "message", "payload", "occurred_at"),
                   (Ref("run", "run_id", "runs", required=True),),
                   json_columns=frozenset({"payload"}), has_source=False,
                   has_updated_at=False, company_in_key=False)  # fmt: skip
HINTS = Table("attribution_hints", "hints", None, ("hint_key",),
              ("hint_key", "session_key", "valid_from", "valid_to", "origin", "note"),
              (Ref("issue", "issue_id", "issues", required=True),
               Ref("agent", "agent_id", "agents")),
              has_source=False, has_updated_at=False)  # fmt: skip

COST_EVENTS = Table("cost_events", "cost_events", None, ("source", "external_id"),
                    ("external_id", "provider", "biller", "billing_type", "billing_code", "model",
                     "input_tokens", "cached_input_tokens", "output_tokens", "cost_usd",
                     "cost_status", "occurred_at"),
                    (Ref("agent", "agent_id", "agents"), Ref("issue", "issue_id", "issues"),
                     Ref("project", "project_id", "projects"),
                     Ref("run", "heartbeat_run_id", "runs")),
                    has_updated_at=False)  # fmt: skip
FINANCE_EVENTS = Table("finance_events", "finance_events", None, ("source", "external_id"),
                       ("external_id", "kind", "direction", "amount_usd", "biller", "estimated",
                        "description", "occurred_at", "attributes"),
                       json_columns=frozenset({"attributes"}), has_updated_at=False)  # fmt: skip
# A policy's scope is an agent, a project or an issue: one of the three refs names it.
BUDGET_POLICIES = Table("budget_policies", "budget_policies", "policies",
                        ("source", "external_id"),
                        ("external_id", "name", "scope_type", "window_kind", "window_days",
                         "metric", "amount", "warn_percent", "hard_stop", "active"),
                        (Ref("scope_agent", "scope_id", "agents"),
                         Ref("scope_project", "scope_id", "projects"),
                         Ref("scope_issue", "scope_id", "issues")))  # fmt: skip
BUDGET_INCIDENTS = Table("budget_incidents", "budget_incidents", None, ("source", "external_id"),
                         ("external_id", "kind", "status", "observed_amount", "threshold_amount",
                          "window_start", "window_end", "opened_at", "resolved_at"),
                         (Ref("policy", "policy_id", "policies", required=True),),
                         has_updated_at=False)  # fmt: skip
APPROVALS = Table("approvals", "approvals", None, ("source", "external_id"),
                  ("external_id", "kind", "status", "subject_type", "payload", "requested_by",
                   "decided_by", "decision_note", "decided_at", "created_at"),
                  json_columns=frozenset({"payload"}))  # fmt: skip

# In dependency order: a table's references point at tables loaded before it.
TABLES: tuple[Table, ...] = (AGENTS, GOALS, PROJECTS, ISSUES, STATUS_CHANGES, ACTIVITY, SESSIONS,
                             USAGE, TOOL_CALLS, HEARTBEAT_RUNS, RUN_EVENTS, HINTS, COST_EVENTS,
                             FINANCE_EVENTS, BUDGET_POLICIES, BUDGET_INCIDENTS,
                             APPROVALS)  # fmt: skip
# Self references, set once every row of the table exists: (table, field, column).
PARENTS = (("agents", "reports_to", "reports_to_id"), ("goals", "parent", "parent_id"),
           ("issues", "parent", "parent_id"))  # fmt: skip


@dataclass
class LoadSummary:
    seen: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    rejects: int = 0
    run_id: int | None = None
    # nothing was read: the upstream is as it was at the load of `run_id`
    unchanged: bool = False
    # open issues the upstream no longer has, closed by this load
    issues_gone: int = 0

    @property
    def total_changed(self) -> int:
        return sum(self.changed.values())


class _Ids:
    """Canonical ids of upstream records, per entity, filled as tables load."""

    def __init__(self) -> None:
        self.maps: dict[str, dict[Key, int]] = {}

    def resolve(self, entity: str, key: Key) -> int | None:
        return self.maps.get(entity, {}).get(key)


def _upsert(cur: psycopg.Cursor[Any], table: Table, columns: list[str],
            rows: Iterable[dict[str, Any]]) -> int:  # fmt: skip
    """Write `rows` (records with `columns`, company and source; taken one at a time, so that
    a large table is never held twice) in one statement: COPY into a staging table, then one
    upsert from it; returns the number of rows inserted or changed.
    A row whose key comes twice takes its last copy, and rows take ids in the order given.

    An upsert per row (executemany) cost 60 s for a million rows of a mid-sized Paperclip,
    every hourly run, though nearly nothing had changed."""
    inserted = ["company_id", *(["source"] if table.has_source else []), *columns]
    updatable = [c for c in columns if c not in table.conflict]
    conflict = ", ".join((*(("company_id",) if table.company_in_key else ()), *table.conflict))
    stage = f"stage_{table.name}"
    cur.execute(
        f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS "
        f"SELECT {', '.join(inserted)}, 0::bigint AS ord FROM {table.name} WITH NO DATA"
    )
    written = 0
    with cur.copy(f"COPY {stage} ({', '.join(inserted)}, ord) FROM STDIN") as copy:
        for written, row in enumerate(rows, start=1):
            copy.write_row([*(row.get(c) for c in inserted), written])
    if not written:
        cur.execute(f"DROP TABLE {stage}")
        return 0
    assignments = [f"{c} = excluded.{c}" for c in updatable]
    if table.has_updated_at:
        assignments.append("updated_at = now()")
    changed = ", ".join(f"{table.name}.{c}" for c in updatable)
    new = ", ".join(f"excluded.{c}" for c in updatable)
    # ROW(...) keeps a one-column comparison a row comparison
    cur.execute(
        f"INSERT INTO {table.name} ({', '.join(inserted)}) "
        f"SELECT {', '.join(inserted)} FROM ("
        f"SELECT DISTINCT ON ({conflict}) * FROM {stage} ORDER BY {conflict}, ord DESC"
        f") AS last_copy ORDER BY ord "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {', '.join(assignments)} "
        f"WHERE ROW({changed}) IS DISTINCT FROM ROW({new})"
    )
    count = max(cur.rowcount, 0)
    cur.execute(f"DROP TABLE {stage}")
    return count


def _rows(table: Table, graph: WorkGraph, ids: _Ids, company_id: int, source: str,
          reject: Callable[[str, Any, str, dict[str, Any]], None],
          rejected_keys: set[tuple[str, str]]) -> Iterator[dict[str, Any]]:  # fmt: skip
    """The table's rows, references resolved; a record that cannot be stored is rejected and
    its key noted in `rejected_keys` (entity, upstream id), so that a record naming it says
    so rather than that it does not exist."""
    for record in getattr(graph, table.graph_field):
        row: dict[str, Any] = {"company_id": company_id}
        if table.has_source:
            row["source"] = record.get("source", source)
        for column in table.columns:
            value = record.get(column)
            if column in table.json_columns:
                value = Jsonb(value if value is not None else {}) if column == "attributes" \
                    else (Jsonb(value) if value is not None else None)  # fmt: skip
            row[column] = value
        problem = _too_long_to_index(table, record)
        for ref in table.refs:
            upstream = record.get(ref.field)
            if upstream is None:
                if ref.required:
                    problem = f"{ref.field} is missing"
                row.setdefault(ref.column, None)  # several refs may share a column
                continue
            key = (record.get(f"{ref.field}_source", source), upstream)
            resolved = ids.resolve(ref.entity, key)
            if resolved is None and (ref.entity, str(upstream)) in rejected_keys:
                problem = f"{ref.field} {upstream!r} was rejected (its own reject says why)"
            elif resolved is None:
                problem = f"{ref.field} {upstream!r} does not exist upstream"
            row[ref.column] = resolved
        if problem:
            row_id = next(
                (
                    record[k]
                    for k in ("external_id", "session_key", "call_key", "hint_key", "message_id")
                    if record.get(k)
                ),
                None,
            )
            reject(table.name, row_id, problem, record)
            if table.entity and row_id is not None:
                rejected_keys.add((table.entity, str(row_id)))
            continue
        yield row


def _too_long_to_index(table: Table, record: dict[str, Any]) -> str | None:
    """Why the record cannot be stored when a text value of its key (or its session key,
    indexed too) is longer than MAX_KEY_CHARS: PostgreSQL could not index it, and the load
    of every record would fail with it."""
    for column in (*table.conflict, "session_key"):
        value = record.get(column)
        reason = key_too_long(column, value) if isinstance(value, str) else None
        if reason:
            return reason
    return None


def _id_map(cur: psycopg.Cursor[Any], table: Table, company_id: int) -> dict[Key, int]:
    natural = ", ".join(c for c in table.conflict)
    cur.execute(f"SELECT {natural}, id FROM {table.name} WHERE company_id = %s", (company_id,))
    return {tuple(row[:-1]): row[-1] for row in cur.fetchall()}


def _set_parents(cur: psycopg.Cursor[Any], graph: WorkGraph, ids: _Ids, source: str,
                 summary: LoadSummary) -> None:  # fmt: skip
    for entity, field_name, column in PARENTS:
        parent_of: dict[int, int | None] = {}  # a record given twice: its last copy's parent
        for record in getattr(graph, entity):
            child = ids.resolve(entity, (source, record.get("external_id")))
            parent_ref = record.get(field_name)
            parent = ids.resolve(entity, (source, parent_ref)) if parent_ref else None
            if child is not None:
                parent_of[child] = parent
        if parent_of:
            cur.execute(
                f"UPDATE {entity} AS t SET {column} = u.parent "
                "FROM unnest(%s::bigint[], %s::bigint[]) AS u(id, parent) "
                f"WHERE t.id = u.id AND t.{column} IS DISTINCT FROM u.parent",
                (list(parent_of), list(parent_of.values())),
            )
            summary.changed[entity] = summary.changed.get(entity, 0) + max(cur.rowcount, 0)


# Pigeon deletes a card outright. Kept as it was, a card deleted while in progress stayed in
# progress for ever: the lone in-progress issue of its agent or project for every later
# request, or the reason another was `ambiguous`.
CLOSE_ISSUES_GONE_UPSTREAM = """
WITH gone AS (
    SELECT i.id, i.status, i.external_id FROM issues AS i
    JOIN projects AS p ON p.id = i.project_id
    WHERE i.company_id = %(company)s::bigint AND i.source = %(source)s::text
      AND p.source = %(source)s::text AND p.external_id = ANY(%(projects)s::text[])
      AND NOT (i.external_id = ANY(%(present)s::text[]))
      AND i.status NOT IN ('done', 'cancelled')
), closed AS (
    UPDATE issues AS i SET status = 'cancelled', cancelled_at = now(),
        attributes = i.attributes || jsonb_build_object('gone_upstream_at', now())
    FROM gone WHERE i.id = gone.id
    RETURNING i.id, gone.status, gone.external_id
)
INSERT INTO issue_status_changes (company_id, issue_id, source, external_id, from_status,
                                  to_status, changed_at, actor_type)
SELECT %(company)s::bigint, id, %(source)s::text, 'gone:' || external_id || ':' || now()::text,
       status, 'cancelled', now(), 'upstream_deleted'
FROM closed
"""


def _close_issues_gone_upstream(cur: psycopg.Cursor[Any], graph: WorkGraph, company_id: int,
                                source: str, summary: LoadSummary) -> None:  # fmt: skip
    """Close the stored open issues of the graph's projects that the upstream no longer has:
    cancelled now (when the deletion was noticed; the history before it stands). An issue
    the graph has but rejected is not gone, nor is one of a project the graph lacks (another
    upstream company's, loaded into the same tally company)."""
    present = {str(issue.get("external_id")) for issue in graph.issues}
    present |= {upstream.row_id for upstream in graph.rejects if upstream.entity == "issues"}
    projects = [str(project.get("external_id")) for project in graph.projects]
    if not projects:
        return
    params = {"company": company_id, "source": source, "projects": projects,
              "present": list(present)}  # fmt: skip
    cur.execute(CLOSE_ISSUES_GONE_UPSTREAM, params)
    if cur.rowcount > 0:
        summary.issues_gone = cur.rowcount
        summary.changed["issues"] = summary.changed.get("issues", 0) + cur.rowcount


def _load_commits(cur: psycopg.Cursor[Any], graph: WorkGraph, ids: _Ids, company_id: int,
                  source: str, summary: LoadSummary) -> None:  # fmt: skip
    """The graph's commits (`upsert_commits`) and their issue links, in a few statements
    whatever their number (a statement or more per commit took 9 s for 10,000 commits, every
    run)."""
    summary.seen["git_commits"] = len(graph.commits)
    summary.changed["git_commits"] = summary.changed["issue_commit_links"] = 0
    if not graph.commits:
        return
    stored = upsert_commits(cur, company_id, [
        CommitRow(ids.resolve("projects", (source, commit.get("project"))), commit["repo"],
                  commit["hash"], commit.get("author_name"), commit.get("author_email"),
                  commit["committed_at"], commit.get("message") or "", commit.get("files") or [])
        for commit in graph.commits
    ])  # fmt: skip
    summary.changed["git_commits"] = stored.changed
    links: list[tuple[int, int, str, str]] = []
    for commit, commit_id in zip(graph.commits, stored.ids, strict=True):
        for issue_ref, reference, link_source in commit.get("links", ()):
            issue_id = ids.resolve("issues", (source, issue_ref))
            if issue_id is not None:  # else the adapter rejected the link when it named no card
                links.append((issue_id, commit_id, reference, link_source))
    if links:
        cur.execute(
            """INSERT INTO issue_commit_links (company_id, issue_id, commit_id, reference,
                   link_source)
               SELECT %s, issue_id, commit_id, reference, link_source
               FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[])
                 WITH ORDINALITY AS l(issue_id, commit_id, reference, link_source, ordinal)
               ORDER BY ordinal
               ON CONFLICT (issue_id, commit_id) DO NOTHING""",
            (company_id, *map(list, zip(*links, strict=True))),
        )
        summary.changed["issue_commit_links"] = max(cur.rowcount, 0)


def _reject_row(location: str, table_name: str, row_id: Any, reason: str,
                row: dict[str, Any]) -> RejectRow:  # fmt: skip
    excerpt = row_excerpt(row)
    return RejectRow(f"{location}#{table_name}", str(row_id)[:MAX_KEY_CHARS], reason, excerpt,
                     hashlib.sha1(excerpt.encode()).hexdigest())  # fmt: skip


STORED_RUN_EVENTS = """
SELECT r.external_id, count(*), max(e.seq)
FROM heartbeat_run_events AS e
JOIN heartbeat_runs AS r ON r.id = e.run_id
JOIN companies AS c ON c.id = r.company_id
WHERE c.slug = %s AND r.source = %s
GROUP BY r.external_id
"""


def stored_run_events(conninfo: str, company: str, source: str) -> dict[str, tuple[int, int]]:
    """Per upstream run id, how many of its events the store holds and their highest seq:
    what an adapter need not read again."""
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(STORED_RUN_EVENTS, (company, source)).fetchall()
    return {external_id: (count, last) for external_id, count, last in rows}


def load_work_graph(conninfo: str, graph: WorkGraph, *, company: str, source: str,
                    location: str, arguments: dict[str, Any] | None = None,
                    extra: Iterable[Callable[[psycopg.Cursor[Any], int, LoadSummary], None]] = ()
                    ) -> LoadSummary:  # fmt: skip
    """Everything in one transaction: a failed load leaves the store as it was."""
    summary = LoadSummary()
    with psycopg.connect(conninfo) as conn:
        company_id = ensure_company(conn, company)
        conn.commit()
        run = conn.execute(
            """INSERT INTO ingestion_runs (source, started_at, arguments, host, pid)
               VALUES (%s, now(), %s, %s, pg_backend_pid()) RETURNING id""",
            (source, orjson.dumps(arguments or {}).decode(), socket.gethostname()),
        ).fetchone()
        assert run is not None
        summary.run_id = run[0]
        conn.commit()
        rejected: list[tuple[str, Any, str, dict[str, Any]]] = []
        rejected_keys = {(upstream.entity, upstream.row_id) for upstream in graph.rejects
                         if upstream.entity}  # fmt: skip

        def reject(table: str, row_id: Any, reason: str, row: dict[str, Any]) -> None:
            rejected.append((table, row_id, reason, row))

        try:
            with conn.transaction(), conn.cursor() as cur:
                if graph.company is not None:
                    upstream = Jsonb({source: graph.company})
                    cur.execute(
                        """UPDATE companies SET attributes = attributes || %s, updated_at = now()
                           WHERE id = %s AND NOT attributes @> %s""",
                        (upstream, company_id, upstream),
                    )
                ids = _Ids()
                for table in TABLES:
                    records = getattr(graph, table.graph_field)
                    summary.seen[table.name] = len(records)
                    if records:
                        present = {c for c in table.columns if any(c in r for r in records)}
                        columns = [c for c in table.columns if c in present or c in table.conflict]
                        columns += list(dict.fromkeys(ref.column for ref in table.refs))
                        rows = _rows(table, graph, ids, company_id, source, reject,
                                     rejected_keys)  # fmt: skip
                        summary.changed[table.name] = _upsert(cur, table, columns, rows)
                    if table.entity:
                        ids.maps[table.entity] = _id_map(cur, table, company_id)
                _set_parents(cur, graph, ids, source, summary)
                if graph.complete:
                    _close_issues_gone_upstream(cur, graph, company_id, source, summary)
                _load_commits(cur, graph, ids, company_id, source, summary)
                for step in extra:
                    step(cur, company_id, summary)
                for upstream in graph.rejects:
                    rejected.append((upstream.table, upstream.row_id, upstream.reason,
                                     upstream.row))  # fmt: skip
                # an upstream keeps its bad rows: every run rejects them again, stored once
                store_rejects(cur, summary.run_id, source,
                              [_reject_row(location, *r) for r in rejected])  # fmt: skip
                summary.rejects = len(rejected)
        except Exception as error:
            conn.execute(
                """UPDATE ingestion_runs SET status = 'failed', finished_at = now(), error = %s
                   WHERE id = %s""",
                (str(error)[:2000], summary.run_id),
            )
            conn.commit()
            raise
        conn.execute(
            """UPDATE ingestion_runs SET status = 'succeeded', finished_at = now(),
                   events_new = %s, rejects = %s WHERE id = %s""",
            (summary.total_changed, summary.rejects, summary.run_id),
        )
        conn.commit()
        analyse_grown(conn, summary.changed)
        fold_usage_day_deltas(conn)
    return summary
