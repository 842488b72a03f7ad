"""Keep the planner's statistics of the tables a bulk load grows, and vacuum the small ones
tally empties faster than autovacuum keeps up (or where it is off).

During a cold ingest autovacuum has not yet analysed the tables the loader fills, so the
planner still believes `agent_sessions` holds a row or two and picks nested loops that
scan it once per staged row: at 20,000 sessions one statement of each batch took seconds
(35 s of a 1 GB ingest). Analysing a table each time its rows have doubled since the planner
last counted them costs a few ANALYZEs per run (log2 of the growth), each of a bounded
sample."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

# The columns the loader's joins and lookups use (`tool_calls` is only upserted through its
# unique index, which needs no statistics); analysing just these keeps each ANALYZE cheap.
GROWN_TABLES = {
    "agent_sessions": ("company_id", "source", "session_key", "parent_session_id",
                       "root_session_id"),
    "token_usage_events": ("company_id", "source", "message_id", "request_id", "is_sidechain"),
}  # fmt: skip
# Below this many new rows the plans do not change enough to be worth an ANALYZE.
MIN_NEW_ROWS = 1000


class TableStatistics:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.counted = {table: self._planner_rows(table) for table in GROWN_TABLES}
        self.added = dict.fromkeys(GROWN_TABLES, 0)

    def grew(self, table: str, rows: int) -> None:
        if table in self.added:
            self.added[table] += rows

    def refresh(self) -> None:
        """ANALYZE the tables that have doubled; call it outside a batch's transaction, so
        that its lock is held only for the ANALYZE itself."""
        for table, columns in GROWN_TABLES.items():
            if self.added[table] >= max(MIN_NEW_ROWS, self.counted[table]):
                self.conn.execute(f"ANALYZE {table} ({', '.join(columns)})")
                self.counted[table] = self._planner_rows(table)
                self.added[table] = 0

    def _planner_rows(self, table: str) -> int:
        return planner_rows(self.conn, table)


def planner_rows(conn: psycopg.Connection[Any], table: str) -> int:
    query = "SELECT reltuples FROM pg_class WHERE oid = %s::regclass"
    row = conn.execute(query, (table,)).fetchone()
    return max(0, int(row[0])) if row else 0  # -1: never analysed


def analyse_grown(conn: psycopg.Connection[Any], changed: Mapping[str, int]) -> list[str]:
    """After a load: ANALYZE each table whose changed rows are at least as many as the
    planner believes it holds; returns those tables. Correlation runs next, on tables a
    first load filled in one transaction: believing `git_commits` and `tool_calls` held a
    few dozen rows, the planner compared every commit with every tool call (10,000 commits
    and 200,000 calls of a Pigeon did not finish in 10 minutes)."""
    analysed = []
    for table, count in changed.items():
        if count >= max(MIN_NEW_ROWS, planner_rows(conn, table)):
            conn.execute(f"ANALYZE {table}")
            analysed.append(table)
    return analysed


def vacuum(conn: psycopg.Connection[Any], table: str) -> None:
    """VACUUM `table` and refresh its statistics, unless another session is vacuuming it
    already; only on an autocommit connection, as VACUUM cannot run in a transaction."""
    if conn.autocommit:
        conn.execute(f"VACUUM (ANALYZE, SKIP_LOCKED) {table}")
