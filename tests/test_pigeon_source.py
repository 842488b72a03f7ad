"""`tally ingest pigeon` against a SQLite file with Pigeon's shapes and a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import psycopg
import pytest
from typer.testing import CliRunner

from ingestion.adapters.pigeon import read_pigeon
from ingestion.sources import CLAUDE_CODE
from pipelines.cli.main import app
from tests.builders import assistant, usage, write_jsonl
from tests.ingest_helpers import ingest
from tests.pigeon_fixture import build_pigeon_db, ms

runner = CliRunner()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def pigeon_db(tmp_path):
    return build_pigeon_db(tmp_path / "pigeon.db")


def settle(pigeon_db, suffixes: tuple[str, ...] = ("", "-wal")) -> None:
    """Date the file and its log ten seconds back: a state taken within two seconds of a
    write is not remembered (a write in the same tick of the kernel's coarse clock would not
    change it), so a test that writes and ingests at once would always read again."""
    import os
    import time

    moment = time.time_ns() - 10_000_000_000
    for path in (f"{pigeon_db}{suffix}" for suffix in suffixes):
        if os.path.exists(path):
            os.utime(path, ns=(moment, moment))


def run_ingest(pigeon_db, *options: str) -> str:
    result = runner.invoke(app, ["ingest", "pigeon", "--db", str(pigeon_db), *options])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_a_sqlite_file_that_is_not_pigeons_fails_clearly(tally_env, tmp_path):
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE projects (id TEXT, name TEXT)")
    result = runner.invoke(app, ["ingest", "pigeon", "--db", str(other)])
    assert result.exit_code == 2
    assert "is not a Pigeon database: it has none of the tables" in " ".join(result.output.split())


def test_a_path_holding_uri_characters_is_read_as_itself(tmp_path):
    """SQLite is given the path as a URI: `#` cut it, so tally read an empty file it had
    just created beside the directory, read-write, and found no Pigeon tables."""
    directory = tmp_path / "boards #2 ?old 100%"
    directory.mkdir()
    database = build_pigeon_db(directory / "pigeon.db")
    graph = read_pigeon(database)
    assert sorted(issue["number"] for issue in graph.issues) == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [directory.name]  # nothing created
    assert sorted(p.name for p in directory.iterdir()) == ["pigeon.db"]


def test_adapter_maps_cards_moves_and_rejects(pigeon_db):
    graph = read_pigeon(pigeon_db)
    assert sorted(issue["number"] for issue in graph.issues) == [1, 2]
    statuses = {i["number"]: i["status"] for i in graph.issues}
    assert statuses == {1: "done", 2: "in_progress"}
    history = [(c["issue"], c["from_status"], c["to_status"]) for c in graph.status_changes]
    assert history == [
        ("card-1", None, "backlog"),  # the state it was created in: the first move's origin
        ("card-1", "backlog", "in_progress"),
        ("card-1", "in_progress", "done"),
        ("card-2", None, "in_progress"),  # created straight into In Progress
    ]
    card_1 = next(i for i in graph.issues if i["number"] == 1)
    assert card_1["started_at"] == at("2026-11-02T09:10:00")
    reasons = {(r.table, r.row_id): r.reason for r in graph.rejects}
    assert "unknown role 'icebox'" in reasons[("card", "card-3")]
    assert "number" in reasons[("card", "card-4")]
    assert "name no two columns" in reasons[("activity", "a5")]
    assert "from 0 to 10^12: input_tokens=-5" in reasons[("token_usage_event", "u3")]
    assert "card-missing" in reasons[("git_link", "g2")]


def test_a_move_between_columns_whose_names_hold_quotes_is_read(pigeon_db):
    """Pigeon writes `Moved from "X" to "Y"` with the names as they are: a name holding a
    quote, or even `" to "`, lost the move (rejected, the card's history left short)."""
    import sqlite3

    doing, done = 'In Progress "now"', 'Done" to "ship'
    with sqlite3.connect(pigeon_db) as db:
        db.execute('UPDATE "column" SET name = ? WHERE id = ?', (doing, "c-doing"))
        db.execute('UPDATE "column" SET name = ? WHERE id = ?', (done, "c-done"))
        db.execute("UPDATE activity SET details = ? WHERE id = 'a2'",
                   (f'Moved from "Backlog" to "{doing}"',))  # fmt: skip
        db.execute("UPDATE activity SET details = ? WHERE id = 'a4'",
                   (f'Moved from "{doing}" to "{done}"',))  # fmt: skip
    graph = read_pigeon(pigeon_db)
    history = [(c["issue"], c["from_status"], c["to_status"]) for c in graph.status_changes
               if c["issue"] == "card-1"]  # fmt: skip
    assert history == [
        ("card-1", None, "backlog"),
        ("card-1", "backlog", "in_progress"),
        ("card-1", "in_progress", "done"),
    ]
    assert not [r for r in graph.rejects if r.row_id in ("a2", "a4")]


def test_values_sqlite_let_through_are_rejected_not_loaded(pigeon_db):
    """SQLite keeps any value in any column: a duration of 10^15 ms crashed the read (the start
    fell before year 1), a text token count would have failed the load of the whole graph."""
    import sqlite3

    now = ms("2026-11-02T12:00:00")
    with sqlite3.connect(pigeon_db) as db:
        db.execute("INSERT INTO tool_call_log VALUES ('tc-long', 'read', 'mcp', 'eng', 'sx', "
                   "NULL, ?, 1, NULL, 0, ?)", (10**15, now))  # fmt: skip
        db.execute("INSERT INTO tool_call_log VALUES ('tc-text', 'read', 'mcp', 'eng', 'sx', "
                   "NULL, 5, 1, NULL, 'many', ?)", (now,))  # fmt: skip
        huge = 9 * 10**18
        db.execute("INSERT INTO token_usage_event VALUES ('u-huge', 'sy', 'p1', NULL, 'eng', "
                   "'claude-sonnet-4-5', ?, 0, 0, 0, 0, NULL, NULL, ?)", (huge, now))  # fmt: skip
    graph = read_pigeon(pigeon_db)
    reasons = {(r.table, r.row_id): r.reason for r in graph.rejects}
    assert reasons[("tool_call_log", "tc-long")] == "duration_ms 1000000000000000 is invalid"
    assert reasons[("tool_call_log", "tc-text")] == "response_tokens 'many' is invalid"
    assert "input_tokens=9000000000000000000" in reasons[("token_usage_event", "u-huge")]
    assert not {"tc-long", "tc-text"} & {call["call_key"] for call in graph.tool_calls}


def test_git_link_files_of_another_shape_keep_the_commit(tally_env, pigeon_db, conninfo):
    """`file_paths` is JSON text: an object failed the load of the whole graph (psycopg cannot
    store a dict in a text[]); such a commit is kept without its files, and a reject says
    why."""
    import sqlite3

    when = (ms("2026-11-02T11:50:00"), ms("2026-11-02T11:55:00"))
    with sqlite3.connect(pigeon_db) as db:
        for link, commit, files in (("g3", "aaa1111", '{"a": 1}'), ("g4", "bbb2222", "[1, null]"),
                                    ("g5", "ccc3333", "not json")):  # fmt: skip
            db.execute("INSERT INTO git_link VALUES (?, 'p1', 'card-1', ?, ?, 'work (#1)', "
                       "'Dev', ?, NULL, ?)", (link, commit, when[0], files, when[1]))  # fmt: skip
    run_ingest(pigeon_db)
    with psycopg.connect(conninfo) as conn:
        reasons = dict(conn.execute(
            "SELECT position, reason FROM ingestion_rejects WHERE position LIKE 'g_'"
        ).fetchall())  # fmt: skip
        files = dict(conn.execute("SELECT hash, files FROM git_commits").fetchall())
    kept = "is not a JSON array of paths; the commit is kept without its files"
    assert reasons == {
        "g2": "card 'card-missing' does not exist",
        "g3": f"file_paths '{{\"a\": 1}}' {kept}",
        "g4": f"file_paths '[1, null]' {kept}",
        "g5": f"file_paths 'not json' {kept}",
    }
    assert files == {"abc1234": ["shop/checkout.py"], "aaa1111": [], "bbb2222": [],
                     "ccc3333": []}  # fmt: skip


def test_a_row_holding_binary_data_is_rejected_and_the_rest_loads(pigeon_db):
    """A blob where Pigeon keeps text (SQLite accepts it in any column) rejects its row."""
    import sqlite3

    before = read_pigeon(pigeon_db)
    with sqlite3.connect(pigeon_db) as db:
        first = db.execute("SELECT id, session_id FROM token_usage_event ORDER BY id").fetchone()
        db.execute("UPDATE token_usage_event SET model = ? WHERE id = ?", (b"\xffclaude", first[0]))
        db.execute("UPDATE activity SET details = ? WHERE action = 'moved'", (b"\x00\x01",))
    graph = read_pigeon(pigeon_db)
    reasons = {(r.table, r.row_id): r.reason for r in graph.rejects}
    assert reasons[("token_usage_event", first[0])] == "binary data in model"
    moves = [key for key, reason in reasons.items() if reason == "binary data in details"]
    assert moves and all(table == "activity" for table, _ in moves)
    assert len(graph.usage) == len(before.usage) - 1
    assert [u for u in graph.usage if u["session"] != first[1]] == [
        u for u in before.usage if u["session"] != first[1]
    ]


def test_nul_characters_in_pigeon_text_are_dropped_not_fatal(tally_env, pigeon_db, conninfo):
    """SQLite text may hold NUL, PostgreSQL text cannot: the ingest drops the character."""
    import sqlite3

    with sqlite3.connect(pigeon_db) as db:
        db.execute("UPDATE card SET title = ? WHERE number = 1", ("Fix\x00 checkout",))
        db.execute("UPDATE token_usage_event SET model = ?", ("claude-sonnet-4-5\x00",))
    run_ingest(pigeon_db)
    with psycopg.connect(conninfo) as conn:
        titles = {t for (t,) in conn.execute("SELECT title FROM issues")}
        models = {m for (m,) in conn.execute("SELECT DISTINCT model FROM token_usage_events")}
    assert "Fix checkout" in titles
    assert models == {"claude-sonnet-4-5"}


def test_ids_too_long_to_index_are_rejected_and_the_rest_loads(tally_env, pigeon_db, conninfo):
    """Upstream ids longer than MAX_KEY_CHARS (random, so that PostgreSQL cannot compress
    them into an index entry) reject their rows instead of failing the load."""
    import random
    import sqlite3
    import string

    def noise(length: int) -> str:
        return "".join(random.Random(length).choices(string.ascii_letters, k=length))

    with sqlite3.connect(pigeon_db) as db:
        db.execute("UPDATE card SET id = ? WHERE number = 1", (noise(5000),))
        db.execute("UPDATE token_usage_event SET session_id = ?", (noise(5001),))
    said = run_ingest(pigeon_db)
    assert "rows rejected" in said
    with psycopg.connect(conninfo) as conn:
        reasons = [
            reason
            for (reason,) in conn.execute(
                "SELECT reason FROM ingestion_rejects WHERE source = 'pigeon'"
            )
        ]
        numbers = {n for (n,) in conn.execute("SELECT number FROM issues")}
    assert "external_id is 5,000 characters long; ids and names have at most 300" in reasons
    assert "session_key is 5,001 characters long; ids and names have at most 300" in reasons
    assert 1 not in numbers and numbers  # the other cards loaded


def test_text_that_is_not_utf8_is_read_with_replacement_characters(tally_env, pigeon_db, conninfo):
    """SQLite stores any bytes as text; one invalid value must not make the file unreadable."""
    import sqlite3

    with sqlite3.connect(pigeon_db) as db:
        db.execute("UPDATE card SET title = CAST(x'46ff78' AS TEXT) WHERE number = 1")
    run_ingest(pigeon_db)
    with psycopg.connect(conninfo) as conn:
        titles = {t for (t,) in conn.execute("SELECT title FROM issues")}
    assert "F\ufffdx" in titles and len(titles) > 1


def test_ingest_loads_everything_once_and_rejects_with_reasons(tally_env, pigeon_db, conninfo):
    said = run_ingest(pigeon_db)
    assert "rows rejected" in said
    with psycopg.connect(conninfo) as conn:
        issues = conn.execute(
            "SELECT number, identifier, status, started_at IS NOT NULL FROM issues ORDER BY 1"
        ).fetchall()
        assert issues == [(1, "#1", "done", True), (2, "#2", "in_progress", True)]
        rejects = dict(conn.execute(
            "SELECT position, reason FROM ingestion_rejects WHERE source = 'pigeon'"
        ).fetchall())  # fmt: skip
        # the loader's own check: activity naming a card that does not exist
        assert "issue 'card-gone' does not exist" in rejects["a6"]
        assert set(rejects) == {"card-3", "card-4", "a5", "a6", "u3", "g2"}
        touches = conn.execute(
            "SELECT action, session_key FROM issue_activity ORDER BY occurred_at"
        ).fetchall()
        # a6 names no card; a5 is kept as a touch though its move could not be read
        assert len(touches) == 6 and ("updated", "mcp-2") in touches
        links = conn.execute(
            """SELECT c.hash, c.repo, l.reference, l.link_source FROM issue_commit_links l
               JOIN git_commits c ON c.id = l.commit_id"""
        ).fetchall()
        assert links == [("abc1234", "/work/shop", "#1", "pigeon-gitlink")]
        tools = conn.execute(
            """SELECT t.tool_name, s.source, s.session_key, t.duration_ms, t.success
               FROM tool_calls t JOIN agent_sessions s ON s.id = t.session_id ORDER BY 1"""
        ).fetchall()
        assert tools[0] == ("getBoard", "pigeon_mcp", "mcp-1", 120, True)
        rollups = conn.execute(
            """SELECT s.session_key, e.origin, e.cache_write_5m_tokens FROM token_usage_events e
               JOIN agent_sessions s ON s.id = e.session_id ORDER BY 1"""
        ).fetchall()
        assert rollups == [("cc-1", "session_rollup", 3000), ("cc-2", "session_rollup", 0)]
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("issues", "issue_status_changes", "issue_activity", "agent_sessions",
                            "tool_calls", "token_usage_events", "ingestion_rejects")}  # fmt: skip

    again = run_ingest(pigeon_db, "--full")  # read and compared again: nothing to write
    assert "changed" in again
    with psycopg.connect(conninfo) as conn:
        changed = conn.execute(
            "SELECT events_new FROM ingestion_runs WHERE source = 'pigeon' ORDER BY id DESC"
        ).fetchone()[0]
        assert changed == 0
        assert counts == {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                          for t in counts}  # fmt: skip
        runs = conn.execute("SELECT count(*) FROM ingestion_runs").fetchone()[0]
    settle(pigeon_db)
    run_ingest(pigeon_db)  # its state now old enough to be remembered
    skipped = run_ingest(pigeon_db)  # the file as it was: not read at all
    assert "pigeon: unchanged since its last load (run 3), nothing read" in skipped
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SELECT count(*) FROM ingestion_runs").fetchone()[0] == runs + 1


def test_a_pigeon_file_is_read_again_once_it_or_its_log_changes(tally_env, pigeon_db,
                                                                conninfo):  # fmt: skip
    """An idle board is not read again hourly (10 s at 20,000 cards); a commit, whether it
    lands in the file or in its write-ahead log, makes the next ingest read it."""
    import os
    import sqlite3

    assert "changed" in run_ingest(pigeon_db)  # just written: read, and read again next time
    assert "unchanged" not in run_ingest(pigeon_db)
    settle(pigeon_db)
    assert "unchanged" not in run_ingest(pigeon_db)
    assert "unchanged since its last load" in run_ingest(pigeon_db)
    with sqlite3.connect(pigeon_db) as db:  # rollback journal: the file itself changes
        db.execute("UPDATE card SET title = 'Renamed' WHERE number = 2")
    settle(pigeon_db)
    assert "unchanged" not in run_ingest(pigeon_db)
    with psycopg.connect(conninfo) as conn:
        assert ("Renamed",) in conn.execute("SELECT title FROM issues").fetchall()
    db = sqlite3.connect(pigeon_db)
    assert db.execute("PRAGMA journal_mode = WAL").fetchone() == ("wal",)
    db.execute("PRAGMA wal_autocheckpoint = 0")  # commits stay in the log
    settle(pigeon_db)
    assert "unchanged" not in run_ingest(pigeon_db)  # the switch rewrote the header
    assert "unchanged since its last load" in run_ingest(pigeon_db)
    db.execute("UPDATE card SET title = 'Again' WHERE number = 2")
    db.commit()
    mtime = os.stat(pigeon_db).st_mtime_ns
    settle(pigeon_db, ("-wal",))
    assert os.stat(pigeon_db).st_mtime_ns == mtime
    assert "unchanged" not in run_ingest(pigeon_db)  # only the log moved
    db.close()
    with psycopg.connect(conninfo) as conn:
        assert ("Again",) in conn.execute("SELECT title FROM issues").fetchall()


def test_a_wal_file_is_read_from_one_snapshot(tally_env, pigeon_db, conninfo, monkeypatch):
    """Pigeon writes while tally reads: a card and its activity written after the cards were
    read wait for the next run instead of making the activity a reject."""
    import sqlite3

    from ingestion.adapters import pigeon

    with sqlite3.connect(pigeon_db) as db:
        assert db.execute("PRAGMA journal_mode = WAL").fetchone() == ("wal",)
    read_rows = pigeon._rows

    def rows_then_a_write(db, table, graph):
        found = read_rows(db, table, graph)
        if table == "card":
            with sqlite3.connect(pigeon_db) as writer:
                writer.execute(
                    "INSERT INTO card (id, column_id, project_id, number, title, position, "
                    "created_by, created_at, updated_at) VALUES ('card-9', 'c-doing', 'p1', 9, "
                    "'Late', 0, 'AGENT', ?, ?)", (ms("2026-11-02T15:00:00"),) * 2)  # fmt: skip
                writer.execute(
                    "INSERT INTO activity (id, card_id, action, actor_type, created_at) "
                    "VALUES ('a9', 'card-9', 'updated', 'HUMAN', ?)",
                    (ms("2026-11-02T15:01:00"),),
                )
        return found

    def state() -> tuple[list[int], int, int]:
        with psycopg.connect(conninfo) as conn:
            numbers = [n for (n,) in conn.execute("SELECT number FROM issues ORDER BY 1")]
            activity = conn.execute(
                "SELECT count(*) FROM issue_activity WHERE external_id = 'a9'"
            ).fetchone()[0]
            rejects = conn.execute(
                "SELECT count(*) FROM ingestion_rejects WHERE position = 'a9'"
            ).fetchone()[0]
        return numbers, activity, rejects  # fmt: skip

    monkeypatch.setattr(pigeon, "_rows", rows_then_a_write)
    run_ingest(pigeon_db)
    monkeypatch.setattr(pigeon, "_rows", read_rows)
    assert state() == ([1, 2], 0, 0)
    run_ingest(pigeon_db)
    assert state() == ([1, 2, 9], 1, 0)


def test_status_change_in_upstream_is_picked_up(tally_env, pigeon_db, conninfo):
    import sqlite3

    run_ingest(pigeon_db)
    db = sqlite3.connect(pigeon_db)
    db.execute("UPDATE card SET column_id = 'c-done' WHERE id = 'card-2'")
    db.execute("INSERT INTO activity (id, card_id, action, details, actor_type, actor_name, "
               "session_id, created_at) VALUES ('a8', 'card-2', 'moved', "
               "'Moved from \"In Progress\" to \"Done\"', 'AGENT', 'claude-code', 'mcp-2', "
               "'2026-11-02T15:00:00.000Z')")  # fmt: skip
    db.commit()
    db.close()
    run_ingest(pigeon_db)
    with psycopg.connect(conninfo) as conn:
        history = conn.execute(
            """SELECT to_status FROM issue_status_changes c JOIN issues i ON i.id = c.issue_id
               WHERE i.number = 2 ORDER BY changed_at"""
        ).fetchall()
        assert [row[0] for row in history] == ["in_progress", "done"]
        assert conn.execute("SELECT status FROM issues WHERE number = 2").fetchone()[0] == "done"


def test_correlation_links_transcript_sessions(tally_env, pigeon_db, conninfo):
    """A Claude Code session in the project's repository spanning MCP session mcp-1 is that
    session's agent conversation; session cc-1 also appears in Pigeon's Stop-hook rollups, so
    its rollup stops counting and it takes Pigeon's agent."""
    claude = tally_env / "claude" / "projects"
    lines = [
        assistant("m1", "r1", "2026-11-02T09:00:00.000Z", usage(), session="cc-1",
                  cwd="/work/shop/web"),
        assistant("m2", "r2", "2026-11-02T12:30:00.000Z", usage(), session="cc-1",
                  cwd="/work/shop/web"),
    ]  # fmt: skip
    write_jsonl(claude / "-work-shop" / "cc-1.jsonl", lines)
    ingest(conninfo, CLAUDE_CODE, claude)
    said = run_ingest(pigeon_db)
    assert "1 MCP sessions matched" in said
    with psycopg.connect(conninfo) as conn:
        session = conn.execute(
            """SELECT p.name, s.project_link, a.name, s.agent_link FROM agent_sessions s
               JOIN projects p ON p.id = s.project_id JOIN agents a ON a.id = s.agent_id
               WHERE s.source = 'claude_code'"""
        ).fetchone()
        assert session == ("Shop", "workspace-path", "claude-code", "upstream-identity")
        correlated = conn.execute(
            """SELECT c.upstream_key, c.method, s.session_key FROM session_correlations c
               JOIN agent_sessions s ON s.id = c.session_id"""
        ).fetchall()
        # mcp-2 acted at 13:00, after cc-1's last turn: no transcript session spans it
        assert correlated == [("mcp-1", "time-overlap+workspace", "cc-1")]
    usage_rows = runner.invoke(app, ["report", "usage", "--by", "session", "--format", "json"])
    rows = orjson.loads(usage_rows.stdout)
    assert {(row["source"], row["session_id"]) for row in rows} == {
        ("claude_code", "cc-1"),  # the transcript, not Pigeon's rollup of the same session
        ("pigeon", "cc-2"),  # a rollup with no transcript counts
    }


def test_a_card_deleted_upstream_is_closed_not_left_in_progress(tally_env, pigeon_db, conninfo):
    """Pigeon deletes a card outright. Kept as it was, a card deleted in progress stayed in
    progress for ever: the lone in-progress issue of its project for every later request.
    It is cancelled when the load notices it is gone; a card the load rejects is not gone."""
    import sqlite3

    def card(number: int) -> tuple:
        with psycopg.connect(conninfo) as conn:
            return conn.execute(
                """SELECT i.status, i.cancelled_at IS NOT NULL,
                          array_agg(c.to_status || '/' || c.actor_type ORDER BY c.changed_at)
                   FROM issues i JOIN issue_status_changes c ON c.issue_id = i.id
                   WHERE i.number = %s GROUP BY 1, 2""",
                (number,),
            ).fetchone()

    run_ingest(pigeon_db)
    assert card(2)[0] == "in_progress"
    with sqlite3.connect(pigeon_db) as db:  # unreadable now (a column of no known role)
        db.execute("UPDATE card SET column_id = 'c-odd' WHERE id = 'card-2'")
    run_ingest(pigeon_db)
    assert card(2)[0] == "in_progress"  # rejected, not gone
    with sqlite3.connect(pigeon_db) as db:
        db.execute("DELETE FROM card WHERE id IN ('card-1', 'card-2')")
    said = run_ingest(pigeon_db)
    assert "1 open issue gone upstream: cancelled as of now" in said
    status, cancelled, history = card(2)
    assert (status, cancelled) == ("cancelled", True)
    assert history[-1] == "cancelled/upstream_deleted"
    assert card(1)[0] == "done"  # finished before it went: left as it was
    run_ingest(pigeon_db, "--full")
    assert card(2)[2] == history  # noticed once
