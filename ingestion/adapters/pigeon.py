"""Pigeon's SQLite database (`TALLY_PIGEON_DB`) as a `WorkGraph`.

Read-only. Projects, cards (issues with project-scoped numbers) and their status history:
a card's status is its column's role; history comes from `moved` activity
(`Moved from "X" to "Y"`, column names resolved within the card's project) plus the state the
card was created in. Every activity row is an issue touch, with the MCP session that made it.
MCP process sessions (`activity.session_id`, `tool_call_log.session_id`) become sessions of
source `pigeon_mcp`, so correlation can link them to the agent sessions tally reads from
transcripts. `token_usage_event` rows are per-session rollups (origin `session_rollup`): they
count only for sessions with no transcript (see `schemas/usage_rules.py`). Git links become
commits with their card references.

Columns are read by name and a missing optional column reads as null, so older Pigeon
schemas load too. Timestamps may be epoch milliseconds or ISO text (Prisma writes either).
"""

from __future__ import annotations

import re
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from ingestion.adapters.common import parse_timestamp
from ingestion.workgraph.records import WorkGraph
from schemas.limits import MAX_COUNT, MAX_DURATION_MS

SOURCE = "pigeon"
MCP_SESSION_SOURCE = "pigeon_mcp"
ROLE_STATUS = {
    "backlog": "backlog",
    "todo": "todo",
    "active": "in_progress",
    "review": "in_review",
    "done": "done",
    "parking": "backlog",
}
# Columns from before roles existed: their names say what they are.
NAME_STATUS = {
    "backlog": "backlog",
    "to do": "todo",
    "todo": "todo",
    "up next": "todo",
    "in progress": "in_progress",
    "doing": "in_progress",
    "review": "in_review",
    "in review": "in_review",
    "done": "done",
    "parking lot": "backlog",
}
# The entity (`Ref.entity`) each table's rows become, for references to a rejected row.
ENTITIES = {"project": "projects", "card": "issues"}
MOVED = re.compile(r'Moved from "')
NAMES_SEPARATOR = '" to "'
TOKEN_COLUMNS = {
    "input_tokens": ("input_tokens",),
    "output_tokens": ("output_tokens",),
    "cache_read_tokens": ("cache_read_tokens",),
    "cache_write_1h_tokens": ("cache_creation_1h_tokens", "cache_creation_1h"),
    "cache_write_5m_tokens": ("cache_creation_5m_tokens", "cache_creation_5m"),
}


class PigeonError(RuntimeError):
    pass


def provider_of(model: str) -> str:
    lowered = model.lower()
    if lowered.startswith("claude"):
        return "anthropic"
    if lowered.startswith(("gpt", "o1", "o3", "o4", "codex")):
        return "openai"
    if lowered.startswith("gemini"):
        return "google"
    return "unknown"


# The tables read; a Pigeon version may lack some, but a file with none of them is not Pigeon's.
PIGEON_TABLES = frozenset(
    {"project", "board", "column", "card", "activity", "tool_call_log", "token_usage_event",
     "git_link"}
)  # fmt: skip


def _rows(db: sqlite3.Connection, table: str, graph: WorkGraph) -> list[dict[str, Any]]:
    """The table's rows; a row holding binary data, which no Pigeon column is meant to, is
    rejected here (SQLite keeps whatever a column is given)."""
    exists = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    if not exists:
        return []
    cursor = db.execute(f'SELECT * FROM "{table}"')
    names = [d[0] for d in cursor.description]
    rows = []
    for values in cursor.fetchall():
        row = {
            # SQLite text may hold NUL, which PostgreSQL text cannot: dropped, as COPY does
            name: value.replace("\x00", "") if isinstance(value, str) else value
            for name, value in zip(names, values, strict=True)
        }
        binary = [name for name, value in row.items() if isinstance(value, bytes)]
        if binary:
            graph.reject(table, row.get("id"), f"binary data in {', '.join(binary)}", row)
        else:
            rows.append(row)
    return rows


def _file_paths(link: dict[str, Any], graph: WorkGraph) -> list[str]:
    """A git link's `file_paths`, a JSON array of paths. Anything else is noted in a reject
    and the commit kept without its files (a JSON object failed the load of everything)."""
    raw = link.get("file_paths")
    if raw is None or raw == "":
        return []
    try:
        paths = orjson.loads(raw) if isinstance(raw, str) else None
    except orjson.JSONDecodeError:
        paths = None
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        graph.reject("git_link", link.get("id"), f"file_paths {str(raw)[:60]!r} is not a JSON "
                     "array of paths; the commit is kept without its files", link)  # fmt: skip
        return []
    return [path for path in paths if path]


def moved_between(details: str, is_column: Callable[[str], bool]) -> tuple[str, str] | None:
    """The column names of a move's details, `Moved from "X" to "Y"`. Pigeon writes the names
    as they are, so one may hold quotes, even `" to "`: of the ways to read the details, the
    only one naming two columns of the project is taken; else the plain reading (names
    without quotes), whose unknown name the caller's reject then names; else None."""
    match = MOVED.search(details)
    if match is None:
        return None
    body = details[match.end() :]
    readings = []
    separator = body.find(NAMES_SEPARATOR)
    while separator >= 0:
        rest = body[separator + len(NAMES_SEPARATOR) :]
        readings += [(body[:separator], rest[:end]) for end, c in enumerate(rest) if c == '"']
        separator = body.find(NAMES_SEPARATOR, separator + 1)
    columns = [reading for reading in readings if is_column(reading[0]) and is_column(reading[1])]
    if len(columns) == 1:
        return columns[0]
    return readings[0] if readings and not columns else None


def _time(value: Any) -> datetime | None:
    return parse_timestamp(value)


def _count(value: Any, limit: int = MAX_COUNT) -> bool:
    """An integer from 0 to `limit`: SQLite keeps whatever a column is given."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit


def _first(row: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if row.get(name) is not None:
            return row[name]
    return None


def _column_status(column: dict[str, Any]) -> str | None:
    role = column.get("role")
    if role:
        return ROLE_STATUS.get(str(role).lower())
    if column.get("is_parking"):
        return "backlog"
    return NAME_STATUS.get(str(column.get("name") or "").strip().lower())


def _one_snapshot(db: sqlite3.Connection) -> None:
    """Read every table in one transaction when the file is in WAL mode: Pigeon writes while
    tally reads, and a card written between the read of the cards and the read of the
    activity made its activity a reject ("issue ... does not exist upstream"). Only in WAL
    mode: there
    a reader holds no writer back, where in the rollback-journal modes its lock would make
    Pigeon's writes wait (and fail) for as long as the read lasts."""
    mode = db.execute("PRAGMA journal_mode").fetchone()
    if mode and str(mode[0]).lower() == "wal":
        db.execute("BEGIN")


# What a load of a Pigeon file depends on besides the file: a file unchanged since its last
# load is not read again unless this (or the schema's revision) moved since. Raise it when
# what is read from the file, or how it is mapped, changes.
READER_VERSION = 1


def read_pigeon(path: Path) -> WorkGraph:
    if not path.is_file():
        raise PigeonError(f"no Pigeon database at {path}")
    try:
        # the path as a URI, quoted: one holding `#`, `?` or `%` read as itself gave SQLite
        # another file, which it created empty, read-write (the `?mode=ro` was cut off)
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        # SQLite keeps whatever bytes it is given as text: one invalid UTF-8 value must not
        # make the whole file unreadable (the default decoder raises at the first)
        db.text_factory = lambda raw: raw.decode("utf-8", "replace")
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        _one_snapshot(db)
    except sqlite3.DatabaseError as error:
        raise PigeonError(f"{path} is not a readable SQLite database: {error}") from error
    try:
        tables = {
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if not tables & PIGEON_TABLES:
            raise PigeonError(
                f"{path} is not a Pigeon database: it has none of the tables "
                f"{', '.join(sorted(PIGEON_TABLES))}"
            )
        return _graph(db)
    except sqlite3.Error as error:
        raise PigeonError(f"cannot read the Pigeon database {path}: {error}") from error
    finally:
        db.close()


def _graph(db: sqlite3.Connection) -> WorkGraph:
    graph = WorkGraph(entities=ENTITIES, complete=True)  # a whole read: see WorkGraph.complete
    agents: set[str] = set()

    def agent(name: Any) -> str | None:
        if isinstance(name, str) and name.strip():
            agents.add(name.strip())
            return name.strip()
        return None

    projects = {}
    for row in _rows(db, "project", graph):
        if not row.get("id") or not row.get("name"):
            graph.reject("project", row.get("id"), "id or name is missing", row)
            continue
        projects[row["id"]] = row
        graph.projects.append({
            "external_id": row["id"], "name": row["name"], "key": None,
            "workspace_path": row.get("repo_path"),
            "attributes": {"slug": row.get("slug")},
        })  # fmt: skip

    boards = {
        row["id"]: row.get("project_id") for row in _rows(db, "board", graph) if row.get("id")
    }
    columns: dict[str, dict[str, Any]] = {}
    by_name: dict[tuple[str, str], set[str | None]] = defaultdict(set)
    for row in _rows(db, "column", graph):
        project = boards.get(row.get("board_id"))
        status = _column_status(row)
        columns[row["id"]] = {**row, "status": status, "project": project}
        by_name[(project, str(row.get("name") or "").strip().lower())].add(status)

    def names_a_column(project: str, name: str) -> bool:
        return (project, name.strip().lower()) in by_name

    def status_named(project: str, name: str) -> tuple[str | None, str | None]:
        statuses = by_name.get((project, name.strip().lower()))
        if not statuses:
            return None, f'no column named "{name}" in the card\'s project'
        if len(statuses) > 1:
            return None, f'column name "{name}" means several roles in the project'
        (status,) = statuses
        if status is None:
            return None, f'column "{name}" has no known role'
        return status, None

    cards: dict[str, dict[str, Any]] = {}
    for row in _rows(db, "card", graph):
        column = columns.get(row.get("column_id"))
        reason = None
        if not row.get("id") or row.get("number") is None or not row.get("project_id"):
            reason = "id, number or project_id is missing"
        elif column is None:
            reason = f"column {row.get('column_id')!r} does not exist"
        elif column["status"] is None:
            reason = (f"column {column.get('name')!r} has an unknown role "
                      f"{column.get('role')!r}")  # fmt: skip
        if reason:
            graph.reject("card", row.get("id"), reason, row)
            continue
        assert column is not None
        cards[row["id"]] = {**row, "status": column["status"]}

    moves: dict[str, list[tuple[datetime, str, str, dict[str, Any]]]] = defaultdict(list)
    mcp_sessions: dict[str, dict[str, Any]] = {}

    def saw_session(key: Any, at: datetime | None, project: Any) -> str | None:
        if not isinstance(key, str) or not key:
            return None
        session = mcp_sessions.setdefault(key, {"first": at, "last": at, "project": project})
        if at is not None:
            session["first"] = min(filter(None, (session["first"], at)))
            session["last"] = max(filter(None, (session["last"], at)))
        session["project"] = session["project"] or project
        return key

    for row in _rows(db, "activity", graph):
        at = _time(row.get("created_at"))
        card = cards.get(row.get("card_id"))
        if at is None or not row.get("id") or not row.get("action"):
            graph.reject("activity", row.get("id"), "id, action or created_at is missing", row)
            continue
        actor_type = str(row.get("actor_type") or "").lower() or None
        actor = agent(row.get("actor_name")) if actor_type == "agent" else None
        session = saw_session(row.get("session_id"), at, card and card["project_id"])
        graph.activity.append({
            "external_id": row["id"], "issue": row.get("card_id"), "action": row["action"],
            "details": row.get("details"), "actor_type": actor_type, "actor_agent": actor,
            "session_key": session, "occurred_at": at,
        })  # fmt: skip
        if row["action"] == "moved" and card is not None:
            moved = moved_between(str(row.get("details") or ""),
                                  partial(names_a_column, card["project_id"]))  # fmt: skip
            if moved is None:
                graph.reject("activity", row["id"], "a move whose details name no two columns "
                             'as `Moved from "X" to "Y"`', row)  # fmt: skip
                continue
            moves[card["id"]].append((at, moved[0], moved[1], {
                "external_id": row["id"], "actor_type": actor_type, "actor_agent": actor,
                "session_key": session, "row": row,
            }))  # fmt: skip

    for card in cards.values():
        history = sorted(moves.get(card["id"], []), key=lambda m: m[0])
        created = _time(card.get("created_at"))
        initial = card["status"]
        changes = []
        for at, from_name, to_name, meta in history:
            from_status, _ = status_named(card["project_id"], from_name)
            to_status, problem = status_named(card["project_id"], to_name)
            if problem:
                graph.reject("activity", meta["external_id"], problem, meta["row"])
                continue
            changes.append((at, from_status, to_status, meta))
        if changes and changes[0][1] is not None:
            initial = changes[0][1]
        if created is not None:
            graph.status_changes.append({
                "external_id": f"{card['id']}:created", "issue": card["id"],
                "from_status": None, "to_status": initial, "changed_at": created,
                "actor_type": str(card.get("created_by") or "").lower() or None,
            })  # fmt: skip
        for at, from_status, to_status, meta in changes:
            graph.status_changes.append({
                "external_id": meta["external_id"], "issue": card["id"],
                "from_status": from_status, "to_status": to_status, "changed_at": at,
                "actor_type": meta["actor_type"], "actor_agent": meta["actor_agent"],
                "session_key": meta["session_key"],
            })  # fmt: skip
        started = next((at for at, _, to, _ in changes if to == "in_progress"), None)
        if started is None and initial == "in_progress":
            started = created
        graph.issues.append({
            "external_id": card["id"], "project": card["project_id"], "number": card["number"],
            "identifier": f"#{card['number']}", "title": card.get("title") or "",
            "status": card["status"], "priority": card.get("priority"),
            "assignee_agent": agent(card.get("assignee")),
            "attributes": {"column_id": card.get("column_id")},
            "created_at": created, "updated_at": _time(card.get("updated_at")),
            "started_at": started, "completed_at": _time(card.get("completed_at")),
        })  # fmt: skip

    _tool_calls(db, graph, agent, saw_session)
    _usage(db, graph, agent)
    _commits(db, graph, projects, cards)
    for key, session in mcp_sessions.items():
        graph.sessions.append({
            "source": MCP_SESSION_SOURCE, "session_key": key, "project": session["project"],
            "project_link": "pigeon" if session["project"] else None,
            "first_activity_at": session["first"], "last_activity_at": session["last"],
        })  # fmt: skip
    graph.agents = [{"external_id": name, "name": name} for name in sorted(agents)]
    return graph


def _tool_calls(db: sqlite3.Connection, graph: WorkGraph, agent: Any, saw_session: Any) -> None:
    for row in _rows(db, "tool_call_log", graph):
        ended = _time(row.get("created_at"))
        if not row.get("id") or not row.get("tool_name") or ended is None:
            graph.reject("tool_call_log", row.get("id"), "id, tool_name or created_at missing",
                         row)  # fmt: skip
            continue
        duration = row.get("duration_ms")
        if duration is not None and not _count(duration, MAX_DURATION_MS):
            graph.reject("tool_call_log", row["id"], f"duration_ms {duration!r:.40} is invalid",
                         row)  # fmt: skip
            continue
        response_tokens = row.get("response_tokens")
        if response_tokens is not None and not _count(response_tokens):
            graph.reject("tool_call_log", row["id"],
                         f"response_tokens {response_tokens!r:.40} is invalid", row)  # fmt: skip
            continue
        agent(row.get("agent_name"))
        session = saw_session(row.get("session_id"), ended, row.get("project_id"))
        graph.tool_calls.append({
            "call_key": row["id"], "session": session,
            "session_source": MCP_SESSION_SOURCE, "tool_name": row["tool_name"],
            "mcp_server": "pigeon",
            "started_at": ended - timedelta(milliseconds=duration) if duration else ended,
            "ended_at": ended, "duration_ms": duration,
            "success": None if row.get("success") is None else bool(row["success"]),
            "error_message": row.get("error_message"),
            "result_tokens_estimate": response_tokens,
        })  # fmt: skip


def _usage(db: sqlite3.Connection, graph: WorkGraph, agent: Any) -> None:
    sessions: dict[str, dict[str, Any]] = {}
    for row in _rows(db, "token_usage_event", graph):
        at = _time(_first(row, ("recorded_at", "created_at")))
        session, model = row.get("session_id"), row.get("model")
        if not session or not model or at is None:
            graph.reject("token_usage_event", row.get("id"),
                         "session_id, model or recorded_at is missing", row)  # fmt: skip
            continue
        tokens = {name: _first(row, names) or 0 for name, names in TOKEN_COLUMNS.items()}
        bad = [f"{k}={v!r:.40}" for k, v in tokens.items() if not _count(v)]
        if bad:
            reason = f"token counts must be integers from 0 to 10^12: {', '.join(bad)}"
            graph.reject("token_usage_event", row.get("id"), reason, row)
            continue
        entry = sessions.setdefault(session, {"first": at, "last": at,
                                              "project": row.get("project_id"),
                                              "agent": agent(row.get("agent_name"))})  # fmt: skip
        entry["first"], entry["last"] = min(entry["first"], at), max(entry["last"], at)
        graph.usage.append({
            "session": session, "message_id": f"{session}:{model}",
            "request_id": "session-rollup", "occurred_at": at, "provider": provider_of(model),
            "model": model, "reasoning_tokens": 0, "origin": "session_rollup", **tokens,
        })  # fmt: skip
    for key, entry in sessions.items():
        graph.sessions.append({
            "session_key": key, "project": entry["project"], "agent": entry["agent"],
            "project_link": "pigeon" if entry["project"] else None,
            "agent_link": "pigeon" if entry["agent"] else None,
            "first_activity_at": entry["first"], "last_activity_at": entry["last"],
        })  # fmt: skip


def _commits(db: sqlite3.Connection, graph: WorkGraph, projects: dict[str, Any],
             cards: dict[str, Any]) -> None:  # fmt: skip
    commits: dict[tuple[str, str], dict[str, Any]] = {}
    for row in _rows(db, "git_link", graph):
        at = _time(row.get("commit_date"))
        card = cards.get(row.get("card_id"))
        if not row.get("commit_hash") or at is None:
            graph.reject("git_link", row.get("id"), "commit_hash or commit_date is missing", row)
            continue
        if card is None:
            graph.reject("git_link", row.get("id"),
                         f"card {row.get('card_id')!r} does not exist", row)  # fmt: skip
            continue
        project = row.get("project_id") or card["project_id"]
        repo = (projects.get(project) or {}).get("repo_path") or f"pigeon:{project}"
        files = _file_paths(row, graph)
        commit = commits.setdefault((repo, row["commit_hash"]), {
            "repo": repo, "hash": row["commit_hash"], "project": project,
            "author_name": row.get("author_name"), "committed_at": at,
            "message": row.get("message") or "", "files": files, "links": [],
        })  # fmt: skip
        commit["links"].append((card["id"], f"#{card['number']}", "pigeon-gitlink"))
    graph.commits.extend(commits.values())
