"""Per-day usage totals kept by triggers (`usage_day_deltas`, migration 0006): what the
freshness check of every report and the reconciliation of every materialisation read instead
of scanning the events. They must equal the events after any statement that changes them."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from ingestion.sources import CLAUDE_CODE
from ingestion.store import CanonicalStore
from ingestion.usage_day_deltas import FOLD_LOCK, fold_usage_day_deltas
from tests.builders import assistant, usage, write_jsonl
from tests.ingest_helpers import day_totals_counted, day_totals_kept, ingest

EVENT = """INSERT INTO token_usage_events (company_id, session_id, source, message_id,
               request_id, occurred_at, provider, model, origin, input_tokens, output_tokens,
               reasoning_tokens, cache_read_tokens, cache_write_5m_tokens,
               cache_write_1h_tokens)
           VALUES (%s, %s, %s, %s, 'r', %s, 'anthropic', 'claude-sonnet-4-5', %s,
                   %s, %s, %s, %s, %s, %s)"""


def _company_and_session(conn: psycopg.Connection, slug: str, key: str,
                         source: str = "claude_code") -> tuple[int, int]:  # fmt: skip
    company = conn.execute(
        """INSERT INTO companies (slug, name) VALUES (%s, %s)
           ON CONFLICT (slug) DO UPDATE SET name = excluded.name RETURNING id""",
        (slug, slug),
    ).fetchone()[0]
    session = conn.execute(
        """INSERT INTO agent_sessions (company_id, source, session_key) VALUES (%s, %s, %s)
           RETURNING id""",
        (company, source, key),
    ).fetchone()[0]
    return company, session


def _event(conn, company, session, message, at, tokens=(10, 20, 5, 300, 40, 50), *,
           source="claude_code", origin="transcript"):  # fmt: skip
    conn.execute(EVENT, (company, session, source, message, at, origin, *tokens))


def test_every_kind_of_change_keeps_the_totals_equal_to_the_events(conninfo):
    with psycopg.connect(conninfo, autocommit=True) as conn:
        company, session = _company_and_session(conn, "acme", "s1")
        _event(conn, company, session, "m1", "2026-10-01T23:59:59Z")
        _event(conn, company, session, "m2", "2026-10-02T00:00:00Z", (1, 2, 0, 3, 0, 0))
        # several rows in one statement, and a multi-row update that moves one across days
        conn.execute(
            """INSERT INTO token_usage_events (company_id, session_id, source, message_id,
                   request_id, occurred_at, provider, model, origin, output_tokens)
               SELECT %s, %s, 'claude_code', 'bulk-' || n, 'r',
                      '2026-10-03T12:00:00Z'::timestamptz, 'anthropic', 'x', 'transcript', n
               FROM generate_series(1, 50) AS n""",
            (company, session),
        )
        assert day_totals_kept(conninfo) == day_totals_counted(conninfo)
        conn.execute("UPDATE token_usage_events SET output_tokens = output_tokens + 7")
        conn.execute(
            "UPDATE token_usage_events SET occurred_at = '2026-10-04T01:00:00Z' "
            "WHERE message_id = 'm1'"
        )
        assert day_totals_kept(conninfo) == day_totals_counted(conninfo)
        # an upsert that updates, as ingestion's merge does
        conn.execute(
            """INSERT INTO token_usage_events AS t (company_id, session_id, source, message_id,
                   request_id, occurred_at, provider, model, origin, input_tokens)
               VALUES (%s, %s, 'claude_code', 'm2', 'r', '2026-10-02T00:00:00Z', 'anthropic',
                       'x', 'transcript', 999)
               ON CONFLICT (company_id, source, message_id, request_id)
               DO UPDATE SET input_tokens = excluded.input_tokens""",
            (company, session),
        )
        conn.execute("DELETE FROM token_usage_events WHERE message_id LIKE 'bulk-1%'")
        assert day_totals_kept(conninfo) == day_totals_counted(conninfo)
        # a cascade from another table deletes through the same triggers
        other, other_session = _company_and_session(conn, "gone", "s9")
        _event(conn, other, other_session, "m9", "2026-10-02T08:00:00Z")
        conn.execute("DELETE FROM companies WHERE id = %s", (other,))
        assert day_totals_kept(conninfo) == day_totals_counted(conninfo)
        rows_before = conn.execute("SELECT count(*) FROM usage_day_deltas").fetchone()[0]
        fold_usage_day_deltas(conn)
        kept = conn.execute("SELECT day, count(*) FROM usage_day_deltas GROUP BY day").fetchall()
        assert all(count == 1 for _, count in kept) and len(kept) < rows_before
        assert day_totals_kept(conninfo) == day_totals_counted(conninfo)
        conn.execute("DELETE FROM token_usage_events WHERE occurred_at < '2026-10-03'")
        fold_usage_day_deltas(conn)  # a day netted to nothing leaves no row behind
        days = [row[0] for row in conn.execute("SELECT day FROM usage_day_deltas")]
        assert date(2026, 10, 2) not in days
        assert day_totals_kept(conninfo) == day_totals_counted(conninfo)
        conn.execute("TRUNCATE token_usage_events")
        assert conn.execute("SELECT count(*) FROM usage_day_deltas").fetchone()[0] == 0


def test_changes_another_transaction_appends_while_folding_are_kept(conninfo):
    with psycopg.connect(conninfo, autocommit=True) as conn:
        company, session = _company_and_session(conn, "acme", "s1")
        for n in range(3):
            _event(conn, company, session, f"m{n}", "2026-10-05T10:00:00Z")
        with psycopg.connect(conninfo) as writer:  # open, not yet committed
            _event(writer, company, session, "late", "2026-10-05T11:00:00Z")
            fold_usage_day_deltas(conn)
            writer.commit()
        fold_usage_day_deltas(conn)
        assert day_totals_kept(conninfo) == day_totals_counted(conninfo)
        assert day_totals_kept(conninfo)[0][1] == 4


def test_store_totals_add_the_rollups_that_count(conninfo):
    """A per-session rollup (Pigeon's Stop hook) counts only where no transcript of that
    session was read: the store adds those to the kept totals, and days and reconciliation
    see the same numbers as a count over the events."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        company, transcript = _company_and_session(conn, "acme", "read")
        _event(conn, company, transcript, "m1", "2026-10-06T10:00:00Z")
        _, covered = _company_and_session(conn, "acme", "read", source="pigeon")
        _, alone = _company_and_session(conn, "acme", "unread", source="pigeon")
        _event(conn, company, covered, "read", "2026-10-06T12:00:00Z", source="pigeon",
               origin="session_rollup")  # fmt: skip
        _event(conn, company, alone, "unread", "2026-10-07T12:00:00Z", (1, 1, 0, 0, 0, 0),
               source="pigeon", origin="session_rollup")  # fmt: skip
    store = CanonicalStore(conninfo)
    each = 10 + 20 + 5 + 300 + 40 + 50
    assert store.daily_totals(date(2026, 10, 1), date(2026, 11, 1)) == {
        date(2026, 10, 6): (1, each),
        date(2026, 10, 7): (1, 2),
    }
    _, totals = store.usage_window_with_totals(date(2026, 10, 6), date(2026, 10, 8))
    assert totals["requests"] == 2 and totals["input_tokens"] == 11
    assert store.usage_window_with_totals(date(2026, 12, 1), date(2026, 12, 2))[1]["requests"] == 0
    assert store.usage_days() == [date(2026, 10, 6), date(2026, 10, 7)]


@pytest.mark.parametrize("workers", [0, 2])
def test_ingestion_leaves_one_folded_row_per_day(conninfo, tmp_path, workers):
    root = tmp_path / "projects"
    lines = [assistant(f"m{day}{n}", f"r{day}{n}", f"2026-10-0{day}T10:0{n}:00Z",
                       usage(100 + n, 10)) for day in (1, 2) for n in range(3)]  # fmt: skip
    write_jsonl(root / "p" / "s1.jsonl", lines)
    ingest(conninfo, CLAUDE_CODE, root, batch_rows=2, workers=workers)
    assert day_totals_kept(conninfo) == day_totals_counted(conninfo)
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute("SELECT day, count(*) FROM usage_day_deltas GROUP BY day").fetchall()
    assert sorted(rows) == [(date(2026, 10, 1), 1), (date(2026, 10, 2), 1)]


def test_a_fold_leaves_the_work_to_one_already_running(conninfo):
    with psycopg.connect(conninfo, autocommit=True) as conn:
        company, session = _company_and_session(conn, "acme", "s1")
        for n in range(3):
            _event(conn, company, session, f"m{n}", "2026-10-05T10:00:00Z")
        with psycopg.connect(conninfo) as other:
            assert other.execute(FOLD_LOCK).fetchone()[0]  # another run is folding
            fold_usage_day_deltas(conn)
            rows = conn.execute("SELECT count(*) FROM usage_day_deltas").fetchone()[0]
            assert rows == 3  # skipped, not blocked
        fold_usage_day_deltas(conn)
        assert conn.execute("SELECT count(*) FROM usage_day_deltas").fetchone()[0] == 1
        assert day_totals_kept(conninfo) == day_totals_counted(conninfo)


def test_a_fold_vacuums_the_table_once_its_dead_rows_pile_up(conninfo, monkeypatch):
    """Each fold deletes about as many rows as it keeps; where autovacuum is off (as on
    these machines) the dead rows of every run stayed, in a table every report reads."""
    import ingestion.usage_day_deltas as deltas

    def vacuums(conn: psycopg.Connection) -> int:
        return conn.execute("SELECT vacuum_count FROM pg_stat_user_tables "
                            "WHERE relname = 'usage_day_deltas'").fetchone()[0]  # fmt: skip

    with psycopg.connect(conninfo, autocommit=True) as conn:
        company, session = _company_and_session(conn, "acme", "s1")
        for n in range(3):
            _event(conn, company, session, f"m{n}", "2026-10-05T10:00:00Z")
        fold_usage_day_deltas(conn)  # 3 rows deleted, 1 kept: below the threshold
        conn.execute("SELECT pg_stat_force_next_flush()")  # the counts, now, not within 1 s
        assert vacuums(conn) == 0
        monkeypatch.setattr(deltas, "VACUUM_DEAD_ROWS", 3)
        fold_usage_day_deltas(conn)
        assert vacuums(conn) == 1
        assert day_totals_kept(conninfo) == day_totals_counted(conninfo)


def test_db_recount_repairs_totals_that_went_wrong(tally_env, db_url, conninfo):
    """A data-only restore with the triggers on counts the restored events once more on top
    of the restored totals: `tally db recount` counts them again from the events."""
    from typer.testing import CliRunner

    from pipelines.cli.main import app

    with psycopg.connect(conninfo, autocommit=True) as conn:
        company, session = _company_and_session(conn, "acme", "s1")
        for n in range(3):
            _event(conn, company, session, f"m{n}", f"2026-10-0{n + 1}T10:00:00Z")
        conn.execute(  # what the restore brought along: a second copy of every day's totals
            "INSERT INTO usage_day_deltas (day, requests, input_tokens, output_tokens, "
            "reasoning_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens) "
            "SELECT day, requests, input_tokens, output_tokens, reasoning_tokens, "
            "cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens FROM usage_day_deltas"
        )
    assert day_totals_kept(conninfo) != day_totals_counted(conninfo)
    result = CliRunner().invoke(app, ["db", "recount"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "3 days" in result.output
    assert day_totals_kept(conninfo) == day_totals_counted(conninfo)
