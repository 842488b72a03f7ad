"""A demo Pigeon board for the demo corpus, so `make run` shows attribution at work.

Built from the sessions the demo ingest stored: each demo repository becomes a Pigeon project
(its path the workspace), and most sessions work one card of it: the card moves to In
Progress when the session starts and to Done when it ends, both through the session's MCP
server (so correlation can link the MCP session to the transcript), some cards are linked to
a commit, and some sessions leave no trace on the board at all. Written with Pigeon's table
shapes (see tests/pigeon_fixture.py for the schema it mirrors)."""

from __future__ import annotations

import random
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

PIGEON_DDL = """
CREATE TABLE project (id TEXT PRIMARY KEY, name TEXT NOT NULL, slug TEXT NOT NULL UNIQUE,
  repo_path TEXT UNIQUE, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL);
CREATE TABLE board (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE "column" (id TEXT PRIMARY KEY, board_id TEXT NOT NULL, name TEXT NOT NULL,
  position INTEGER NOT NULL, role TEXT, is_parking BOOLEAN NOT NULL DEFAULT 0);
CREATE TABLE card (id TEXT PRIMARY KEY, column_id TEXT NOT NULL, project_id TEXT NOT NULL,
  number INTEGER NOT NULL, title TEXT NOT NULL, position INTEGER NOT NULL,
  priority TEXT NOT NULL DEFAULT 'NONE', assignee TEXT, created_by TEXT NOT NULL DEFAULT 'HUMAN',
  completed_at DATETIME, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL);
CREATE TABLE activity (id TEXT PRIMARY KEY, card_id TEXT NOT NULL, action TEXT NOT NULL,
  details TEXT, actor_type TEXT NOT NULL DEFAULT 'HUMAN', actor_name TEXT, session_id TEXT,
  created_at DATETIME NOT NULL);
CREATE TABLE git_link (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, card_id TEXT NOT NULL,
  commit_hash TEXT NOT NULL, commit_date DATETIME NOT NULL, message TEXT NOT NULL,
  author_name TEXT NOT NULL, file_paths TEXT NOT NULL DEFAULT '[]', session_id TEXT,
  created_at DATETIME NOT NULL);
"""
COLUMNS = (("todo", "To Do", "todo"), ("doing", "In Progress", "active"),
           ("done", "Done", "done"))  # fmt: skip


@dataclass(frozen=True)
class DemoSession:
    session_key: str
    project_path: str
    first_at: datetime
    last_at: datetime


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def write_demo_board(path: Path, sessions: list[DemoSession], seed: int = 7) -> int:
    """Write the board; returns the number of cards."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.executescript(PIGEON_DDL)
    by_project: dict[str, list[DemoSession]] = defaultdict(list)
    for session in sessions:
        by_project[session.project_path].append(session)
    cards = 0
    for p, (workspace, members) in enumerate(sorted(by_project.items())):
        project = f"p{p}"
        name = Path(workspace).name
        first = _iso(min(s.first_at for s in members) - timedelta(days=1))
        db.execute("INSERT INTO project VALUES (?, ?, ?, ?, ?, ?)",
                   (project, name, name, workspace, first, first))  # fmt: skip
        db.execute("INSERT INTO board VALUES (?, ?, 'Main')", (f"b{p}", project))
        for position, (key, title, role) in enumerate(COLUMNS):
            db.execute('INSERT INTO "column" (id, board_id, name, position, role) '
                       "VALUES (?, ?, ?, ?, ?)", (f"{project}-{key}", f"b{p}", title,
                                                  position, role))  # fmt: skip
        for number, session in enumerate(sorted(members, key=lambda s: s.first_at), start=1):
            if rng.random() < 0.15:
                continue  # a session nobody put on the board
            card, mcp = f"{project}-c{number}", f"mcp-{session.session_key}"
            start = session.first_at - timedelta(seconds=1)
            end = session.last_at + timedelta(seconds=1)
            finished = rng.random() < 0.8
            db.execute(
                "INSERT INTO card (id, column_id, project_id, number, title, position, "
                "assignee, created_by, completed_at, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'claude-code', 'AGENT', ?, ?, ?)",
                (card, f"{project}-{'done' if finished else 'todo'}", project, number,
                 f"{name}: task {number}", number, _iso(end) if finished else None,
                 _iso(start - timedelta(hours=2)), _iso(end)),
            )  # fmt: skip
            # a session that did not finish its card puts it back: nobody works on it now
            moves = [(start, "To Do", "In Progress"),
                     (end, "In Progress", "Done" if finished else "To Do")]  # fmt: skip
            for step, (at, before, after) in enumerate(moves):
                db.execute(
                    "INSERT INTO activity VALUES (?, ?, 'moved', ?, 'AGENT', 'claude-code', ?, ?)",
                    (f"{card}-a{step}", card, f'Moved from "{before}" to "{after}"', mcp,
                     _iso(at)),
                )  # fmt: skip
            if finished and rng.random() < 0.4:
                db.execute(
                    "INSERT INTO git_link VALUES (?, ?, ?, ?, ?, ?, 'dev', '[]', ?, ?)",
                    (f"{card}-g", project, card, f"{rng.getrandbits(160):040x}", _iso(end),
                     f"{name}: task {number} (#{number})", mcp, _iso(end)),
                )  # fmt: skip
            cards += 1
    db.commit()
    db.close()
    return cards


def demo_sessions(conninfo: str) -> list[DemoSession]:
    """The top-level transcript sessions the demo ingest stored."""
    import psycopg

    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            """SELECT session_key, project_path, first_activity_at, last_activity_at
               FROM agent_sessions
               WHERE source IN ('claude_code', 'codex') AND NOT is_subagent
                 AND project_path IS NOT NULL AND first_activity_at IS NOT NULL
               ORDER BY first_activity_at"""
        ).fetchall()
    return [DemoSession(*row) for row in rows]
