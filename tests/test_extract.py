"""Extraction from the canonical store through ADBC: one kept connection per database, never
left inside a transaction, and replaced when the server has closed it."""

from __future__ import annotations

import time

import psycopg
import pytest

from ingestion import extract


def _other_backends(conninfo: str, settled_at: int | None = None) -> list[tuple[int, str]]:
    """The other clients' connections to the test's database (not an autovacuum worker).
    With `settled_at`, asked again for up to 5 s until there are that many: a backend whose
    client has disconnected stays listed until its process has exited (once in CI, two were
    listed where one was kept)."""
    deadline = time.monotonic() + 5
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while True:
            found = conn.execute(
                "SELECT pid, state FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            ).fetchall()
            if settled_at is None or len(found) == settled_at or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def test_a_kept_connection_idles_outside_transactions_and_survives_its_termination(conninfo):
    assert extract.usage_days(conninfo) == []
    extract.price_overrides(conninfo)
    (kept,) = _other_backends(conninfo, settled_at=1)  # both queries went over one connection
    assert kept[1] == "idle"  # not "idle in transaction": it holds back no vacuum, no DDL
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (kept[0],))
    assert extract.usage_days(conninfo) == []  # on a new connection
    assert [pid for pid, _ in _other_backends(conninfo)] != [kept[0]]


def test_a_failing_query_raises_and_the_next_one_runs(conninfo):
    with pytest.raises(extract.adbc.Error, match="no_such_table"):
        extract._arrow(conninfo, "SELECT * FROM no_such_table")
    assert extract.usage_days(conninfo) == []


def test_a_window_and_its_totals_are_read_in_one_snapshot(conninfo, tmp_path, monkeypatch):
    """An ingest that commits between the read of the events and the read of the totals
    must be in neither; the kept connection idles outside a transaction afterwards."""
    from datetime import date

    from ingestion.sources import CLAUDE_CODE
    from tests.builders import assistant, usage, write_jsonl
    from tests.ingest_helpers import ingest

    def transcript(name: str) -> None:
        line = assistant(f"m-{name}", f"r-{name}", "2026-10-07T12:00:00Z", usage())
        write_jsonl(tmp_path / "p" / f"{name}.jsonl", [line])

    transcript("first")
    ingest(conninfo, CLAUDE_CODE, tmp_path)
    real_execute = extract._execute

    def execute_then_ingest(connection, sql, params):
        frame = real_execute(connection, sql, params)
        if sql is extract.USAGE_WINDOW:
            transcript("meanwhile")
            assert ingest(conninfo, CLAUDE_CODE, tmp_path).events_new == 1
        return frame

    monkeypatch.setattr(extract, "_execute", execute_then_ingest)
    frame, totals = extract.usage_window_with_totals(conninfo, date(2026, 10, 7), date(2026, 10, 8))
    assert frame.height == totals["requests"] == 1
    assert totals["cache_read_tokens"] == frame["cache_read_tokens"].sum() == 1000
    # the kept connection is left outside a transaction (connections the ingest closed may
    # linger a moment, idle too)
    assert {state for _, state in _other_backends(conninfo)} == {"idle"}
    monkeypatch.setattr(extract, "_execute", real_execute)
    frame, totals = extract.usage_window_with_totals(conninfo, date(2026, 10, 7), date(2026, 10, 8))
    assert frame.height == totals["requests"] == 2


def test_a_tool_call_touches_each_issue_it_names_once_per_reference(conninfo):
    """By upstream id, by identifier, or by `#N` within the session's project; a reference
    that names an issue in two ways (its identifier is its upstream id) counts once."""
    from datetime import UTC, datetime

    from ingestion.extract_work import TOOL_TOUCHES

    at = datetime(2026, 10, 7, 12, tzinfo=UTC)
    with psycopg.connect(conninfo) as conn:
        company = conn.execute(
            "INSERT INTO companies (slug, name) VALUES ('c', 'c') RETURNING id"
        ).fetchone()[0]
        project, other = (
            conn.execute(
                "INSERT INTO projects (company_id, source, external_id, name) "
                "VALUES (%s, 'paperclip', %s, %s) RETURNING id",
                (company, name, name),
            ).fetchone()[0]
            for name in ("shop", "blog")
        )
        issues = {}
        for key, (project_id, external, identifier, number) in {
            "one": (project, "uuid-1", "PAP-1", 1),
            "same": (project, "PAP-2", "PAP-2", 2),  # identifier = upstream id
            "elsewhere": (other, "uuid-9", "BLG-1", 1),  # #1 of another project
        }.items():
            issues[key] = conn.execute(
                """INSERT INTO issues (company_id, source, external_id, project_id, number,
                       identifier, title, status)
                   VALUES (%s, 'paperclip', %s, %s, %s, %s, 't', 'todo') RETURNING id""",
                (company, external, project_id, number, identifier),
            ).fetchone()[0]
        session = conn.execute(
            "INSERT INTO agent_sessions (company_id, source, session_key, project_id) "
            "VALUES (%s, 'claude_code', 's1', %s) RETURNING id",
            (company, project),
        ).fetchone()[0]
        conn.execute(
            """INSERT INTO tool_calls (company_id, source, call_key, session_id, tool_name,
                   started_at, issue_refs)
               VALUES (%s, 'claude_code', 'c1', %s, 'mcp__paperclip__update', %s, %s)""",
            (company, session, at, ["uuid-1", "PAP-1", "#1", "PAP-2", "#2", "nothing"]),
        )
    frame = extract._arrow(conninfo, TOOL_TOUCHES, ("2026-10-07T00:00:00Z", "2026-10-08T00:00:00Z"))
    found = sorted(frame["issue_id"].to_list())
    assert found == sorted([issues["one"]] * 3 + [issues["same"]] * 2)
    assert set(frame["touched_at"]) == {at}


def test_a_run_over_without_a_recorded_finish_ends_at_its_last_event(conninfo):
    """Its issue is the explicit answer for its time: a failed run whose finish was never
    recorded (its process lost, or a client that sent the status alone) read as running on,
    and claimed every later request of its agent. It ends at its last event, or covers
    nothing without one; a run still going stays open."""
    from datetime import UTC, datetime, timedelta

    from ingestion.extract_work import HINTS

    start = datetime(2026, 10, 7, 9, tzinfo=UTC)
    with psycopg.connect(conninfo) as conn:
        company = conn.execute(
            "INSERT INTO companies (slug, name) VALUES ('c', 'c') RETURNING id"
        ).fetchone()[0]
        agent = conn.execute(
            "INSERT INTO agents (company_id, source, external_id, name) "
            "VALUES (%s, 'paperclip', 'a1', 'eng') RETURNING id",
            (company,),
        ).fetchone()[0]
        issue = conn.execute(
            "INSERT INTO issues (company_id, source, external_id, title, status) "
            "VALUES (%s, 'paperclip', 'i1', 't', 'in_progress') RETURNING id",
            (company,),
        ).fetchone()[0]
        runs = {}
        for name, status, finished in (("finished", "succeeded", start + timedelta(hours=1)),
                                       ("lost-with-events", "interrupted", None),
                                       ("lost-silent", "failed", None),
                                       ("going", "running", None)):  # fmt: skip
            runs[name] = conn.execute(
                """INSERT INTO heartbeat_runs (company_id, source, external_id, agent_id,
                       issue_id, status, started_at, finished_at)
                   VALUES (%s, 'api', %s, %s, %s, %s, %s, %s) RETURNING id""",
                (company, name, agent, issue, status, start, finished),
            ).fetchone()[0]
        for seq, minutes in enumerate((5, 40)):
            conn.execute(
                """INSERT INTO heartbeat_run_events (company_id, run_id, seq, event_type,
                       occurred_at) VALUES (%s, %s, %s, 'log', %s)""",
                (company, runs["lost-with-events"], seq, start + timedelta(minutes=minutes)),
            )
    frame = extract._arrow(conninfo, HINTS, ("2026-10-07T00:00:00Z", "2026-10-08T00:00:00Z"))
    ends = dict(zip(frame["hint_id"].to_list(), frame["valid_to"].to_list(), strict=True))
    assert ends == {
        "run:finished": start + timedelta(hours=1),
        "run:lost-with-events": start + timedelta(minutes=40),
        "run:going": None,
    }  # the silent lost run covers nothing, so it is no hint at all
