"""Extraction from the canonical store through ADBC: one kept connection per database, never
left inside a transaction, and replaced when the server has closed it."""

from __future__ import annotations

import psycopg
import pytest

from ingestion import extract


def _other_backends(conninfo: str) -> list[tuple[int, str]]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(
            "SELECT pid, state FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()


def test_a_kept_connection_idles_outside_transactions_and_survives_its_termination(conninfo):
    assert extract.usage_days(conninfo) == []
    extract.price_overrides(conninfo)
    (kept,) = _other_backends(conninfo)  # both queries went over one connection
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
    assert [state for _, state in _other_backends(conninfo)] == ["idle"]
    monkeypatch.setattr(extract, "_execute", real_execute)
    frame, totals = extract.usage_window_with_totals(conninfo, date(2026, 10, 7), date(2026, 10, 8))
    assert frame.height == totals["requests"] == 2
