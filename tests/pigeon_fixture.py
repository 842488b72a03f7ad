"""A Pigeon SQLite database with the real table shapes (Prisma `@@map` names, snake_case
columns, v7's `column.role`, `activity.session_id`, `git_link`, `token_usage_event` and
`tool_call_log`), filled with a small board whose history exercises every mapping rule.

Prisma writes DateTime to SQLite as epoch milliseconds or ISO text depending on the
adapter; the fixture uses both."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

DDL = """
CREATE TABLE project (id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT,
  slug TEXT NOT NULL UNIQUE, repo_path TEXT UNIQUE, default_board_id TEXT,
  next_card_number INTEGER NOT NULL DEFAULT 1, metadata TEXT NOT NULL DEFAULT '{}',
  created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL);
CREATE TABLE board (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL,
  description TEXT, stale_in_progress_days INTEGER, created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL);
CREATE TABLE "column" (id TEXT PRIMARY KEY, board_id TEXT NOT NULL, name TEXT NOT NULL,
  description TEXT, position INTEGER NOT NULL, role TEXT, is_parking BOOLEAN NOT NULL DEFAULT 0,
  color TEXT, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL);
CREATE TABLE card (id TEXT PRIMARY KEY, column_id TEXT NOT NULL, project_id TEXT NOT NULL,
  number INTEGER, title TEXT NOT NULL, description TEXT, position INTEGER NOT NULL,
  priority TEXT NOT NULL DEFAULT 'NONE', tags TEXT NOT NULL DEFAULT '[]', assignee TEXT,
  created_by TEXT NOT NULL DEFAULT 'HUMAN', due_date DATETIME, completed_at DATETIME,
  metadata TEXT NOT NULL DEFAULT '{}', created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL);
CREATE TABLE activity (id TEXT PRIMARY KEY, card_id TEXT NOT NULL, action TEXT NOT NULL,
  details TEXT, intent TEXT, actor_type TEXT NOT NULL DEFAULT 'HUMAN', actor_name TEXT,
  session_id TEXT, created_at DATETIME NOT NULL);
CREATE TABLE git_link (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, card_id TEXT NOT NULL,
  commit_hash TEXT NOT NULL, commit_date DATETIME NOT NULL, message TEXT NOT NULL,
  author_name TEXT NOT NULL, file_paths TEXT NOT NULL DEFAULT '[]', session_id TEXT,
  created_at DATETIME NOT NULL);
CREATE TABLE token_usage_event (id TEXT PRIMARY KEY, session_id TEXT NOT NULL,
  project_id TEXT, card_id TEXT, agent_name TEXT NOT NULL DEFAULT 'unknown', model TEXT NOT NULL,
  input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
  cache_read_tokens INTEGER NOT NULL DEFAULT 0, cache_creation_1h_tokens INTEGER NOT NULL DEFAULT 0,
  cache_creation_5m_tokens INTEGER NOT NULL DEFAULT 0, signal TEXT, signal_confidence TEXT,
  recorded_at DATETIME NOT NULL);
CREATE TABLE tool_call_log (id TEXT PRIMARY KEY, tool_name TEXT NOT NULL, tool_type TEXT NOT NULL,
  agent_name TEXT NOT NULL, session_id TEXT NOT NULL, project_id TEXT, duration_ms INTEGER NOT NULL,
  success BOOLEAN NOT NULL, error_message TEXT, response_tokens INTEGER NOT NULL DEFAULT 0,
  created_at DATETIME NOT NULL);
"""


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def build_pigeon_db(path: Path, repo_path: str = "/work/shop") -> Path:
    db = sqlite3.connect(path)
    db.executescript(DDL)
    t0 = "2026-11-02T09:00:00"
    db.execute("INSERT INTO project VALUES ('p1', 'Shop', NULL, 'shop', ?, 'b1', 6, '{}', ?, ?)",
               (repo_path, ms(t0), ms(t0)))  # fmt: skip
    db.execute("INSERT INTO board VALUES ('b1', 'p1', 'Main', NULL, 3, ?, ?)", (ms(t0), ms(t0)))
    for column_id, name, position, role in (
        ("c-backlog", "Backlog", 0, "backlog"),
        ("c-doing", "In Progress", 1, "active"),
        ("c-done", "Done", 2, "done"),
        ("c-odd", "Someday", 3, "icebox"),  # a role tally does not know
    ):
        db.execute('INSERT INTO "column" VALUES (?, \'b1\', ?, NULL, ?, ?, 0, NULL, ?, ?)',
                   (column_id, name, position, role, ms(t0), ms(t0)))  # fmt: skip
    cards = (
        # id, column, number, title, assignee, created, completed
        ("card-1", "c-done", 1, "Checkout flow", "claude-code", t0, "2026-11-02T12:00:00"),
        ("card-2", "c-doing", 2, "Price badge", None, "2026-11-02T10:00:00", None),
        ("card-3", "c-odd", 3, "Dark mode", None, t0, None),  # rejected: unknown role
        ("card-4", "c-backlog", None, "No number", None, t0, None),  # rejected: no number
    )
    for card_id, column, number, title, assignee, created, completed in cards:
        db.execute(
            "INSERT INTO card (id, column_id, project_id, number, title, position, assignee, "
            "created_by, completed_at, created_at, updated_at) "
            "VALUES (?, ?, 'p1', ?, ?, 0, ?, 'AGENT', ?, ?, ?)",
            (card_id, column, number, title, assignee, completed and ms(completed),
             created + "Z", ms(created)),
        )  # fmt: skip
    activity = (
        ("a1", "card-1", "created", None, "AGENT", "claude-code", "mcp-1", t0),
        ("a2", "card-1", "moved", 'Moved from "Backlog" to "In Progress"', "AGENT",
         "claude-code", "mcp-1", "2026-11-02T09:10:00"),
        ("a3", "card-1", "updated", "Edited description", "AGENT", "claude-code", "mcp-1",
         "2026-11-02T10:30:00"),
        ("a4", "card-1", "moved", 'Moved from "In Progress" to "Done"', "AGENT", "claude-code",
         "mcp-1", "2026-11-02T12:00:00"),
        ("a5", "card-2", "moved", "Moved somewhere", "HUMAN", "ann", None,
         "2026-11-02T10:05:00"),  # rejected: names no columns
        ("a6", "card-gone", "updated", None, "HUMAN", "ann", None, "2026-11-02T10:06:00"),
        ("a7", "card-2", "updated", "Renamed", "AGENT", "claude-code", "mcp-2",
         "2026-11-02T13:00:00"),
    )  # fmt: skip
    for row in activity:
        db.execute("INSERT INTO activity (id, card_id, action, details, actor_type, actor_name, "
                   "session_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (*row[:7], ms(row[7])))  # fmt: skip
    db.execute("INSERT INTO git_link VALUES ('g1', 'p1', 'card-1', 'abc1234', ?, "
               "'Checkout flow (#1)', 'Dev', '[\"shop/checkout.py\"]', 'mcp-1', ?)",
               (ms("2026-11-02T11:50:00"), ms("2026-11-02T11:55:00")))  # fmt: skip
    db.execute("INSERT INTO git_link VALUES ('g2', 'p1', 'card-missing', 'def5678', ?, "
               "'Old work (#9)', 'Dev', '[]', NULL, ?)",
               (ms("2026-11-02T11:00:00"), ms("2026-11-02T11:00:00")))  # fmt: skip
    usage = (
        ("u1", "cc-1", "p1", "card-1", "claude-code", "claude-sonnet-4-5", 100, 2000, 50000,
         0, 3000, "single-in-progress", "high", "2026-11-02T12:00:00"),
        ("u2", "cc-2", "p1", None, "claude-code", "claude-sonnet-4-5", 10, 20, 0, 0, 0,
         "unattributed", None, "2026-11-02T14:00:00"),
        ("u3", "cc-3", "p1", None, "claude-code", "claude-sonnet-4-5", -5, 20, 0, 0, 0,
         None, None, "2026-11-02T14:00:00"),  # rejected: negative tokens
    )  # fmt: skip
    for row in usage:
        placeholders = ", ".join("?" * 14)
        db.execute(f"INSERT INTO token_usage_event VALUES ({placeholders})",
                   (*row[:13], ms(row[13])))  # fmt: skip
    tools = (
        ("t1", "getBoard", "essential", "claude-code", "mcp-1", "p1", 120, 1, None, 900,
         "2026-11-02T09:05:00"),
        ("t2", "moveCard", "essential", "claude-code", "mcp-1", "p1", 40, 1, None, 20,
         "2026-11-02T09:10:00"),
        ("t3", "updateCard", "essential", "claude-code", "mcp-2", "p1", 35, 0, "boom", 0,
         "2026-11-02T13:00:00"),
    )  # fmt: skip
    for row in tools:
        db.execute("INSERT INTO tool_call_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (*row[:10], row[10] + ".000Z"))  # fmt: skip
    db.commit()
    db.close()
    return path
