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
