"""The loader keeps the planner's statistics of the tables it grows: an ANALYZE each time a
table has doubled since the planner last counted it, none for small growth."""

from __future__ import annotations

import psycopg

from ingestion.loader import ensure_company
from ingestion.table_statistics import MIN_NEW_ROWS, TableStatistics


def _add_sessions(conn: psycopg.Connection, company: int, first: int, count: int) -> None:
    conn.execute(
        """INSERT INTO agent_sessions (company_id, source, session_key)
           SELECT %s, 'claude_code', 's-' || n FROM generate_series(%s::int, %s::int) AS n""",
        (company, first, first + count - 1),
    )


def _planner_rows(conn: psycopg.Connection) -> float:
    return conn.execute(
        "SELECT reltuples FROM pg_class WHERE relname = 'agent_sessions'"
    ).fetchone()[0]


def test_a_table_is_analysed_when_it_has_doubled_and_not_before(conninfo):
    with psycopg.connect(conninfo, autocommit=True) as conn:
        company = ensure_company(conn, "acme")
        # only the loader's ANALYZEs count here (each test has a database of its own)
        conn.execute("ALTER TABLE agent_sessions SET (autovacuum_enabled = false)")
        statistics = TableStatistics(conn)
        _add_sessions(conn, company, 1, MIN_NEW_ROWS - 1)
        statistics.grew("agent_sessions", MIN_NEW_ROWS - 1)
        statistics.refresh()
        assert _planner_rows(conn) <= 0  # too few new rows: not analysed
        _add_sessions(conn, company, MIN_NEW_ROWS, 1)
        statistics.grew("agent_sessions", 1)
        statistics.refresh()
        assert _planner_rows(conn) == MIN_NEW_ROWS  # analysed: the planner now counts them
        _add_sessions(conn, company, MIN_NEW_ROWS + 1, MIN_NEW_ROWS // 2)
        statistics.grew("agent_sessions", MIN_NEW_ROWS // 2)
        statistics.refresh()
        assert _planner_rows(conn) == MIN_NEW_ROWS  # grown by half: not yet
        _add_sessions(conn, company, MIN_NEW_ROWS * 2, MIN_NEW_ROWS // 2)
        statistics.grew("agent_sessions", MIN_NEW_ROWS // 2)
        statistics.refresh()
        assert _planner_rows(conn) == 2 * MIN_NEW_ROWS
        statistics.grew("tool_calls", 10**6)  # only upserted by its unique index: ignored
        statistics.refresh()


def test_a_work_graph_load_leaves_the_tables_it_filled_analysed(conninfo):
    """Correlation follows a load at once, before autovacuum has looked: the planner must
    know that a first load filled `tool_calls` and `git_commits`, or it compares every commit
    with every tool call."""
    from datetime import UTC, datetime

    from ingestion.workgraph.loader import load_work_graph
    from ingestion.workgraph.records import WorkGraph

    with psycopg.connect(conninfo, autocommit=True) as conn:
        for table in ("tool_calls", "git_commits", "agent_sessions"):
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    at = datetime(2026, 11, 3, tzinfo=UTC)
    calls = MIN_NEW_ROWS + 10
    graph = WorkGraph(
        sessions=[{"session_key": "mcp-1", "first_activity_at": at, "last_activity_at": at}],
        tool_calls=[{"call_key": f"t{n}", "session": "mcp-1", "tool_name": "getBoard",
                     "started_at": at} for n in range(calls)],
        commits=[{"repo": "/w/shop", "hash": f"{n:040x}", "committed_at": at, "links": []}
                 for n in range(10)],
    )  # fmt: skip
    load_work_graph(conninfo, graph, company="acme", source="pigeon", location="test")
    with psycopg.connect(conninfo) as conn:
        planner = dict(conn.execute(
            """SELECT relname, reltuples FROM pg_class
               WHERE relname IN ('tool_calls', 'git_commits', 'agent_sessions')"""
        ).fetchall())  # fmt: skip
    assert planner["tool_calls"] == calls
    # below MIN_NEW_ROWS the plans hardly change: left to autovacuum
    assert planner["git_commits"] <= 0 and planner["agent_sessions"] <= 0
