"""Paperclip's PostgreSQL (`TALLY_PAPERCLIP_URL`, read in a read-only transaction) as a
`WorkGraph` for one Paperclip company.

- Agents, goals, projects and issues by their uuids; an issue's number is its `issue_number`
  and its identifier (`PAP-12`) is kept.
- Status history from `activity_log` (`issue.created` / `issue.updated` rows whose details
  carry a status; shapes `{status, _previous: {status}}`, `{changes: {status: {from, to}}}`
  and `{status: {from, to}}` are read); an issue with no recorded history gets one from its
  own lifecycle timestamps (created, started, completed, cancelled), so in-progress intervals
  exist either way. Every issue action by an agent's run is a touch by that run's session.
- Heartbeat runs with their issue (`context_snapshot->>'issueId'`), adapter session id
  (`session_id_after`, else `session_id_before`) and events; cost events (integer cents to
  USD), finance events, budget policies and incidents, approvals.

Statuses are plain text upstream: a value outside Paperclip's documented sets is rejected
with the row, never guessed. So is a row holding a time Python cannot hold (`infinity`,
before year 1, after 9999), which would otherwise fail the read of everything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.adapt import AdaptersMap, Buffer
from psycopg.pq import Format
from psycopg.rows import dict_row
from psycopg.types.datetime import DateLoader, TimestampLoader, TimestamptzLoader
from psycopg.types.json import JsonbLoader, JsonLoader

from ingestion.messages import first_line
from ingestion.workgraph.records import ISSUE_STATUSES, WorkGraph
from schemas.run_rules import RUN_STATUSES

SOURCE = "paperclip"
WINDOW_KINDS = {"calendar_month_utc": "calendar_month", "lifetime": "lifetime"}
METRICS = {"billed_cents": "usd"}
APPROVAL_STATUSES = {"pending", "revision_requested", "approved", "rejected", "cancelled"}
CENT = Decimal("0.01")
# The entity (`Ref.entity`) each table's rows become, for references to a rejected row.
ENTITIES = {"agents": "agents", "goals": "goals", "projects": "projects", "issues": "issues",
            "heartbeat_runs": "runs", "budget_policies": "policies"}  # fmt: skip


class PaperclipError(RuntimeError):
    pass


class UnreadableValue:
    """A stored value Python cannot hold, kept as its text so that its row is rejected naming
    it: a time of `infinity`, before year 1 or after 9999 (PostgreSQL keeps all of these), a
    JSON number beyond a double (stored back, it would read `Infinity`, which is no JSON)."""

    def __init__(self, column_type: str, text: str) -> None:
        self.column_type = column_type
        self.text = text

    def __str__(self) -> str:
        return self.text


def _lenient(loader: type[Any], column_type: str) -> type[Any]:
    """`loader`, returning an UnreadableValue where it would fail: one such value failed the
    whole read, and the message blamed the table's shape."""

    class Lenient(loader):  # type: ignore[misc, valid-type]
        def load(self, data: Buffer) -> Any:
            try:
                return super().load(data)
            except (psycopg.DataError, ValueError, OverflowError):
                return UnreadableValue(column_type, bytes(data).decode(errors="replace"))

    return Lenient


def _finite(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:40]} is beyond a double")
    return number


# One decoder for every value: `json.loads(data, parse_float=...)` built a new one per call.
_JSON = json.JSONDecoder(parse_float=_finite)


def _json_loads(data: bytes | str) -> Any:
    return _JSON.decode(data if isinstance(data, str) else bytes(data).decode())


# What a loader raises on a value Python cannot hold.
_UNLOADABLE = (psycopg.DataError, ValueError, OverflowError)


def _connect(url: str) -> psycopg.Connection[dict[str, Any]]:
    """A read-only connection whose loaders are the fast (C) ones, but that every uuid is
    read as its text (every id is used as text) and JSON numbers beyond a double fail the
    read (json would make them `inf`, which is no JSON).

    Its one transaction is REPEATABLE READ, so every table is read from one snapshot: a live
    Paperclip writes while tally reads, and under READ COMMITTED an issue created between the
    read of the issues and the read of the activity log had its activity rejected as naming
    an issue that "does not exist upstream". Readers never block Paperclip's writers."""
    conn = psycopg.connect(url, row_factory=dict_row,
                           options="-c default_transaction_read_only=on")  # fmt: skip
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    text = conn.adapters.types["text"].oid
    conn.adapters.register_loader("uuid", conn.adapters.get_loader(text, Format.TEXT))
    for name, json_loader in (("json", JsonLoader), ("jsonb", JsonbLoader)):
        strict = type(f"Strict{json_loader.__name__}", (json_loader,), {})
        strict._loads = staticmethod(_json_loads)
        conn.adapters.register_loader(name, strict)
    return conn


def _register_lenient(adapters: AdaptersMap) -> None:
    """Loaders that return an UnreadableValue where the fast ones fail, for a table holding
    such a value. Only such a table is read through them: a Python loader per value made the
    read of a million rows three times as long."""
    for name, loader in (("timestamptz", TimestamptzLoader), ("timestamp", TimestampLoader),
                         ("date", DateLoader)):  # fmt: skip
        adapters.register_loader(name, _lenient(loader, name))
    for name, json_loader in (("json", JsonLoader), ("jsonb", JsonbLoader)):
        lenient = _lenient(json_loader, name)
        lenient._loads = staticmethod(_json_loads)
        adapters.register_loader(name, lenient)


def _cents(value: Any) -> Decimal:
    return (Decimal(str(value)) * CENT).quantize(Decimal("0.000001"))


def _status_change(details: Any) -> tuple[str | None, str | None] | None:
    """(from, to) when an activity's details record a status change."""
    if not isinstance(details, dict):
        return None
    changes = details.get("changes")
    if isinstance(changes, dict) and isinstance(changes.get("status"), dict):
        status = changes["status"]
        return status.get("from"), status.get("to")
    status = details.get("status")
    if isinstance(status, dict):
        return status.get("from"), status.get("to")
    if isinstance(status, str):
        previous = details.get("_previous") or details.get("previous") or {}
        before = previous.get("status") if isinstance(previous, dict) else None
        return before, status
    return None


def _known_status(status: Any) -> bool:
    """One of Paperclip's issue statuses (details are free JSON: a status may be anything)."""
    return isinstance(status, str) and status in ISSUE_STATUSES


# What a load of a Paperclip company depends on besides its rows: a company whose rows are as
# they were at its last load is not read again unless this (or the schema's revision) moved
# since. Raise it when what is read, or how it is mapped, changes.
READER_VERSION = 1
# Every table a read takes rows from, in the order the digest takes them.
TABLES_READ = ("companies", "agents", "goals", "projects", "issues", "activity_log",
               "heartbeat_runs", "heartbeat_run_events", "cost_events", "finance_events",
               "budget_policies", "budget_incidents", "approvals")  # fmt: skip


@contextmanager
def _read_errors() -> Iterator[None]:
    try:
        yield
    except psycopg.Error as error:
        raise PaperclipError(
            f"cannot read Paperclip's database (a table or column is not as Paperclip "
            f"defines it): {first_line(error, repr(error))}"
        ) from error


class PaperclipSnapshot:
    """One company of a Paperclip database as one snapshot shows it (the connection's one
    REPEATABLE READ transaction): its digest and its graph agree with each other."""

    def __init__(self, conn: psycopg.Connection[dict[str, Any]], company_id: str) -> None:
        self.conn = conn
        self.company_id = company_id

    def content_digest(self) -> str:
        """A digest of every row the graph is read from: the count and the sum of a hash of
        each row's text, per table. An insert, an update or a delete anywhere changes it.
        The database does the hashing: 1.2 s for the benchmark's 905,000 rows, where reading
        and comparing them took 13-20 s."""
        digest = hashlib.sha256()
        with _read_errors():
            for table in TABLES_READ:
                if not _exists(self.conn, table):
                    digest.update(f"{table}: absent;".encode())
                    continue
                key = "id" if table == "companies" else "company_id"
                row = self.conn.execute(
                    f"""SELECT count(*) AS n,
                               COALESCE(sum(hashtextextended(t::text, 0)), 0)::text AS hashes
                        FROM {table} AS t WHERE {key} = %s""",
                    (self.company_id,),
                ).fetchone()
                assert row is not None
                digest.update(f"{table}: {row['n']} {row['hashes']};".encode())
        return digest.hexdigest()

    def graph(self, stored_run_events: Mapping[str, tuple[int, int]] | None = None) -> WorkGraph:
        """`stored_run_events`: per run id, the number of its events the canonical store
        holds and their highest `seq` (`stored_run_events()`); the events of those runs are
        not read again while the upstream has the same."""
        with _read_errors():
            graph = _graph(self.conn, self.company_id, stored_run_events or {})
            row = self.conn.execute(
                "SELECT id::text AS id, name, issue_prefix, status FROM companies WHERE id = %s",
                (self.company_id,),
            ).fetchone()
        graph.company = dict(row) if row else None
        return graph


@contextmanager
def paperclip_snapshot(url: str, company: str | None = None) -> Iterator[PaperclipSnapshot]:
    """`company`: a Paperclip company id, issue prefix or name; may be omitted when the
    database holds one company."""
    try:
        conn = _connect(url)
    except psycopg.Error as error:
        raise PaperclipError(f"cannot connect to Paperclip's database: {error}") from error
    with conn:
        with _read_errors():
            company_id = _company(conn, company)
        yield PaperclipSnapshot(conn, company_id)


def read_paperclip(url: str, company: str | None = None,
                   stored_run_events: Mapping[str, tuple[int, int]] | None = None
                   ) -> WorkGraph:  # fmt: skip
    """The company's graph (see `paperclip_snapshot` and `PaperclipSnapshot.graph`)."""
    with paperclip_snapshot(url, company) as snapshot:
        return snapshot.graph(stored_run_events)


def _company(conn: psycopg.Connection[Any], wanted: str | None) -> str:
    present = conn.execute("SELECT to_regclass('companies') IS NOT NULL AS present").fetchone()
    if not present or not present["present"]:
        raise PaperclipError("not a Paperclip database: it has no companies table")
    rows = conn.execute("SELECT id::text AS id, name, issue_prefix FROM companies").fetchall()
    if wanted is not None:
        for row in rows:
            if wanted in (row["id"], row["name"], row["issue_prefix"]):
                return str(row["id"])
        raise PaperclipError(f"no Paperclip company {wanted!r}")
    if len(rows) != 1:
        names = ", ".join(f"{r['issue_prefix']} ({r['name']})" for r in rows) or "none"
        raise PaperclipError(f"choose the Paperclip company with --company: {names}")
    return str(rows[0]["id"])


def _exists(conn: psycopg.Connection[Any], table: str) -> bool:
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL AS present", (table,)).fetchone()
    return bool(exists and exists["present"])


# Rows converted to Python at a time: the result stays in libpq's compact form until then, so
# a table is never held as dicts whole (500,000 run events were most of a cold read's memory).
FETCH_ROWS = 5000


def _rows(conn: psycopg.Connection[Any], table: str, company: str, order: str = "created_at",
          graph: WorkGraph | None = None, where: str = "", params: tuple[Any, ...] = ()
          ) -> Iterator[dict[str, Any]]:  # fmt: skip
    """The company's rows of `table` (and `where`), in `order` then id, but those holding a
    value Python cannot read: each is rejected into `graph` with its reason.

    The fast loaders read; at the first value they refuse, the rest of the table is read
    again through the lenient ones, from the row it stopped at: the transaction's one
    snapshot and the total order give the same rows in the same order."""
    assert table in TABLES_READ, f"{table} is read but not in the digest (TABLES_READ)"
    if not _exists(conn, table):
        return
    query = f"SELECT * FROM {table} WHERE company_id = %s {where} ORDER BY {order}, id"
    taken = 0
    try:
        cursor = conn.execute(query, (company, *params))
        while batch := cursor.fetchmany(FETCH_ROWS):
            taken += len(batch)
            yield from batch
        return
    except _UNLOADABLE:  # a value the fast loaders refuse: the rest, leniently
        pass
    with conn.cursor() as lenient:
        _register_lenient(lenient.adapters)
        lenient.execute(query, (company, *params))
        if taken:
            lenient.scroll(taken)
        while batch := lenient.fetchmany(FETCH_ROWS):
            for row in batch:
                unreadable = [(k, v) for k, v in row.items() if isinstance(v, UnreadableValue)]
                if not unreadable:
                    yield row
                elif graph is not None:
                    column, value = unreadable[0]
                    graph.reject(table, row.get("id"), f"{column} holds {value.text[:60]!r}, "
                                 f"which is no {value.column_type} tally can read",
                                 row)  # fmt: skip


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _working_directory(agent: dict[str, Any], graph: WorkGraph) -> str | None:
    """The agent's `adapter_config.cwd`. A config that is not a JSON object is noted in a
    reject and the agent kept without it: the agent's runs and costs hang on it."""
    config = agent.get("adapter_config")
    if config is not None and not isinstance(config, dict):
        graph.reject(
            "agents",
            agent["id"],
            f"adapter_config is a JSON {type(config).__name__}, "
            "not an object; the agent is kept without its working directory",
            agent,
        )
        return None
    cwd = (config or {}).get("cwd")
    return cwd if isinstance(cwd, str) and cwd else None


def _graph(conn: psycopg.Connection[Any], company: str,
           stored_run_events: Mapping[str, tuple[int, int]]) -> WorkGraph:  # fmt: skip
    graph = WorkGraph(entities=ENTITIES, complete=True)  # a whole read: see WorkGraph.complete
    for row in _rows(conn, "agents", company, graph=graph):
        if not row.get("name"):
            graph.reject("agents", row["id"], "name is missing", row)
            continue
        graph.agents.append({
            "external_id": str(row["id"]), "name": row["name"], "role": row.get("role"),
            "title": row.get("title"), "status": row.get("status"),
            "adapter_type": row.get("adapter_type"), "reports_to": _text(row.get("reports_to")),
            "attributes": {"cwd": _working_directory(row, graph)},
        })  # fmt: skip
    for row in _rows(conn, "goals", company, graph=graph):
        graph.goals.append({
            "external_id": str(row["id"]), "title": row.get("title") or "",
            "level": row.get("level"), "status": row.get("status"),
            "parent": _text(row.get("parent_id")), "owner_agent": _text(row.get("owner_agent_id")),
        })  # fmt: skip
    for row in _rows(conn, "projects", company, graph=graph):
        graph.projects.append({
            "external_id": str(row["id"]), "name": row.get("name") or str(row["id"]),
            "status": row.get("status"), "goal": _text(row.get("goal_id")),
            "archived_at": row.get("archived_at"), "attributes": {},
        })  # fmt: skip
    issues = _issues(conn, company, graph)
    run_rows = list(_rows(conn, "heartbeat_runs", company, graph=graph))
    _history(conn, company, graph, issues, {str(row["id"]): row for row in run_rows})
    runs = _runs(conn, company, graph, issues, run_rows, stored_run_events)
    _ledger(conn, company, graph, issues, runs)
    return graph


def _issues(conn: psycopg.Connection[Any], company: str, graph: WorkGraph
            ) -> dict[str, dict[str, Any]]:  # fmt: skip
    issues = {}
    for row in _rows(conn, "issues", company, graph=graph):
        status = row.get("status")
        if status not in ISSUE_STATUSES:
            graph.reject("issues", row["id"], f"unknown status {status!r}", row)
            continue
        if not row.get("title"):
            graph.reject("issues", row["id"], "title is missing", row)
            continue
        issues[str(row["id"])] = row
        graph.issues.append({
            "external_id": str(row["id"]), "project": _text(row.get("project_id")),
            "goal": _text(row.get("goal_id")), "parent": _text(row.get("parent_id")),
            "number": row.get("issue_number"), "identifier": row.get("identifier"),
            "title": row["title"], "status": status, "priority": row.get("priority"),
            "assignee_agent": _text(row.get("assignee_agent_id")),
            "billing_code": row.get("billing_code"),
            "attributes": {"origin_kind": row.get("origin_kind"),
                           "work_mode": row.get("work_mode")},
            "created_at": row.get("created_at"), "updated_at": row.get("updated_at"),
            "started_at": row.get("started_at"), "completed_at": row.get("completed_at"),
            "cancelled_at": row.get("cancelled_at"),
        })  # fmt: skip
    return issues


def _history(conn: psycopg.Connection[Any], company: str, graph: WorkGraph,
             issues: dict[str, dict[str, Any]], runs: dict[str, dict[str, Any]]
             ) -> None:  # fmt: skip
    recorded: set[str] = set()
    for row in _rows(conn, "activity_log", company, graph=graph):
        if row.get("entity_type") != "issue":
            continue
        issue, at = str(row.get("entity_id")), row.get("created_at")
        run = runs.get(_text(row.get("run_id")) or "")
        session = run and (run.get("session_id_after") or run.get("session_id_before"))
        actor_type = row.get("actor_type")
        acting_agent = row.get("actor_id") if actor_type == "agent" else None
        agent = _text(row.get("agent_id")) or _text(acting_agent)
        graph.activity.append({
            "external_id": str(row["id"]), "issue": issue, "action": row.get("action") or "",
            "details": None, "actor_type": actor_type, "actor_agent": agent,
            "session_key": session, "occurred_at": at,
        })  # fmt: skip
        change = _status_change(row.get("details"))
        if change is None or issue not in issues:
            continue
        before, after = change
        if not _known_status(after) or (before is not None and not _known_status(before)):
            graph.reject("activity_log", row["id"], f"unknown status in change {before!r} -> "
                         f"{after!r}", row)  # fmt: skip
            continue
        recorded.add(issue)
        graph.status_changes.append({
            "external_id": str(row["id"]), "issue": issue, "from_status": before,
            "to_status": after, "changed_at": at, "actor_type": actor_type,
            "actor_agent": agent, "session_key": session,
        })  # fmt: skip
    for issue_id, issue in issues.items():
        if issue_id not in recorded:
            graph.status_changes.extend(_lifecycle(issue_id, issue))


def _lifecycle(issue_id: str, issue: dict[str, Any]) -> list[dict[str, Any]]:
    """History from the issue's own timestamps when the activity log recorded none."""
    steps: list[tuple[datetime, str]] = []
    if issue.get("created_at"):
        steps.append((issue["created_at"], "todo" if issue.get("started_at") else issue["status"]))
    if issue.get("started_at"):
        steps.append((issue["started_at"], "in_progress"))
    for column, status in (("completed_at", "done"), ("cancelled_at", "cancelled")):
        if issue.get(column):
            steps.append((issue[column], status))
    if steps and steps[-1][1] != issue["status"] and issue.get("updated_at"):
        steps.append((issue["updated_at"], issue["status"]))
    changes, previous = [], None
    for at, status in sorted(steps, key=lambda step: step[0]):
        if status == previous:
            continue
        changes.append({"external_id": f"{issue_id}:{status}@{at.isoformat()}", "issue": issue_id,
                        "from_status": previous, "to_status": status, "changed_at": at,
                        "actor_type": "lifecycle",
                        "actor_agent": _text(issue.get("assignee_agent_id"))})  # fmt: skip
        previous = status
    return changes


def _run_events(conn: psycopg.Connection[Any], company: str, graph: WorkGraph,
                stored: Mapping[str, tuple[int, int]]) -> Iterator[dict[str, Any]]:  # fmt: skip
    """The events of the runs whose events are not all stored already: a run's events are a
    log, appended to and never edited, so a run whose events number and end (highest `seq`)
    as the stored ones have nothing new. The events are most of a Paperclip's rows: read
    again on every run, they were half its time and most of its memory."""
    order = "run_id, seq"
    if not stored or not _exists(conn, "heartbeat_run_events"):
        return _rows(conn, "heartbeat_run_events", company, order=order, graph=graph)
    counts = conn.execute(
        """SELECT run_id::text AS run, count(*) AS events, max(seq) AS last
           FROM heartbeat_run_events WHERE company_id = %s GROUP BY run_id""",
        (company,),
    ).fetchall()
    unread = [c["run"] for c in counts if stored.get(c["run"]) != (c["events"], c["last"])]
    if not unread:
        return iter(())
    return _rows(conn, "heartbeat_run_events", company, order=order, graph=graph,
                 where="AND run_id = ANY(%s::uuid[])", params=(unread,))  # fmt: skip


def _runs(conn: psycopg.Connection[Any], company: str, graph: WorkGraph,
          issues: dict[str, dict[str, Any]], rows: list[dict[str, Any]],
          stored_run_events: Mapping[str, tuple[int, int]]) -> set[str]:  # fmt: skip
    """The runs of `rows` (`heartbeat_runs`) and their events not stored already; returns
    the ids kept."""
    runs = set()
    for row in rows:
        context = row.get("context_snapshot") or {}
        issue = context.get("issueId") if isinstance(context, dict) else None
        if row.get("status") not in RUN_STATUSES:
            graph.reject("heartbeat_runs", row["id"], f"unknown status {row.get('status')!r}", row)
            continue
        if issue is not None and str(issue) not in issues:
            graph.reject("heartbeat_runs", row["id"], f"context issueId {issue!r} is not an issue "
                         "of the company", row)  # fmt: skip
            continue
        runs.add(str(row["id"]))
        graph.heartbeat_runs.append({
            "external_id": str(row["id"]), "agent": _text(row.get("agent_id")),
            "issue": _text(issue),
            "adapter_session_key": row.get("session_id_after") or row.get("session_id_before"),
            "status": row["status"], "invocation_source": row.get("invocation_source"),
            "started_at": row.get("started_at"), "finished_at": row.get("finished_at"),
            "error": row.get("error"), "error_code": row.get("error_code"),
            "exit_code": row.get("exit_code"), "usage": row.get("usage_json"),
            "result": row.get("result_json"), "context": context or None,
        })  # fmt: skip
    for row in _run_events(conn, company, graph, stored_run_events):
        if str(row.get("run_id")) not in runs:
            graph.reject("heartbeat_run_events", row["id"],
                         f"run {row.get('run_id')!s} was not loaded", row)  # fmt: skip
            continue
        graph.run_events.append({
            "run": str(row["run_id"]), "seq": row["seq"], "event_type": row["event_type"],
            "stream": row.get("stream"), "level": row.get("level"),
            "message": row.get("message"), "payload": row.get("payload"),
            "occurred_at": row["created_at"],
        })  # fmt: skip
    return runs


def _ledger(conn: psycopg.Connection[Any], company: str, graph: WorkGraph,
            issues: dict[str, dict[str, Any]], runs: set[str]) -> None:  # fmt: skip
    for row in _rows(conn, "cost_events", company, order="occurred_at, id", graph=graph):
        if row.get("cost_cents") is None or Decimal(str(row["cost_cents"])) < 0:
            graph.reject("cost_events", row["id"], "cost_cents is missing or negative", row)
            continue
        graph.cost_events.append({
            "external_id": str(row["id"]), "agent": _text(row.get("agent_id")),
            "issue": _text(row.get("issue_id")), "project": _text(row.get("project_id")),
            "run": _text(row.get("heartbeat_run_id")), "provider": row.get("provider"),
            "biller": row.get("biller"), "billing_type": row.get("billing_type"),
            "billing_code": row.get("billing_code"), "model": row.get("model"),
            "input_tokens": row.get("input_tokens") or 0,
            "cached_input_tokens": row.get("cached_input_tokens") or 0,
            "output_tokens": row.get("output_tokens") or 0,
            "cost_usd": _cents(row["cost_cents"]), "cost_status": row.get("cost_status"),
            "occurred_at": row["occurred_at"],
        })  # fmt: skip
    for row in _rows(conn, "finance_events", company, order="occurred_at, id", graph=graph):
        if row.get("direction") not in ("debit", "credit") or row.get("amount_cents") is None:
            graph.reject("finance_events", row["id"], "direction or amount_cents is invalid", row)
            continue
        graph.finance_events.append({
            "external_id": str(row["id"]), "kind": row.get("event_kind") or "unknown",
            "direction": row["direction"], "amount_usd": _cents(row["amount_cents"]),
            "biller": row.get("biller"), "estimated": bool(row.get("estimated")),
            "description": row.get("description"), "occurred_at": row["occurred_at"],
            "attributes": {"currency": row.get("currency"), "model": row.get("model"),
                           "billing_code": row.get("billing_code")},
        })  # fmt: skip
    for row in _rows(conn, "budget_policies", company, graph=graph):
        window, metric = WINDOW_KINDS.get(row.get("window_kind")), METRICS.get(row.get("metric"))
        scope = row.get("scope_type")
        if window is None or metric is None or scope not in ("company", "agent", "project"):
            graph.reject("budget_policies", row["id"],
                         f"unknown window {row.get('window_kind')!r}, metric "
                         f"{row.get('metric')!r} or scope {scope!r}", row)  # fmt: skip
            continue
        graph.budget_policies.append({
            "external_id": str(row["id"]), "scope_type": scope, "window_kind": window,
            "metric": metric, "amount": _cents(row.get("amount") or 0),
            "warn_percent": row.get("warn_percent") or 80,
            "hard_stop": bool(row.get("hard_stop_enabled")),
            "active": bool(row.get("is_active", True)),
            f"scope_{scope}": _text(row.get("scope_id")) if scope != "company" else None,
        })  # fmt: skip
    for row in _rows(conn, "budget_incidents", company, graph=graph):
        graph.budget_incidents.append({
            "external_id": str(row["id"]), "policy": _text(row.get("policy_id")),
            "kind": row.get("threshold_type"), "status": row.get("status"),
            "observed_amount": _cents(row.get("amount_observed") or 0),
            "threshold_amount": _cents(row.get("amount_limit") or 0),
            "window_start": row.get("window_start"), "window_end": row.get("window_end"),
            "opened_at": row.get("created_at"), "resolved_at": row.get("resolved_at"),
        })  # fmt: skip
    for row in _rows(conn, "approvals", company, graph=graph):
        if row.get("status") not in APPROVAL_STATUSES:
            graph.reject("approvals", row["id"], f"unknown status {row.get('status')!r}", row)
            continue
        graph.approvals.append({
            "external_id": str(row["id"]), "kind": row.get("type"), "status": row["status"],
            "payload": row.get("payload") or {},
            "requested_by": _text(row.get("requested_by_agent_id")
                                  or row.get("requested_by_user_id")),
            "decided_by": _text(row.get("decided_by_user_id")),
            "decision_note": row.get("decision_note"), "decided_at": row.get("decided_at"),
            "created_at": row.get("created_at"),
        })  # fmt: skip
