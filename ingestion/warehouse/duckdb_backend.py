"""The embedded default warehouse: one DuckDB file. DuckDB allows one writing process per
file, so each operation opens the file, does its work and closes it (a command that makes
several in a row holds one connection for them: `held`); Dagster runs the writing assets one
at a time (pool "warehouse")."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from ingestion.messages import first_line
from ingestion.warehouse.errors import WarehouseBusy, WarehouseUnreadable
from schemas.warehouse import BOOL, DATE, FLOAT, INT, MONEY, TEXT, TIMESTAMP, WarehouseTable

# How long an operation waits for another process to release the file.
LOCK_WAIT_SECONDS = 60.0
_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")

TYPES = {
    DATE: "DATE",
    TIMESTAMP: "TIMESTAMPTZ",
    TEXT: "VARCHAR",
    INT: "BIGINT",
    FLOAT: "DOUBLE",
    BOOL: "BOOLEAN",
    MONEY: "DECIMAL(38, 12)",
}


class ArrowStream:
    """A polars frame or a DuckDB relation, passed to the other through the Arrow C stream
    interface alone (a fresh stream for every scan).

    Handed over directly, DuckDB converts a polars frame through pyarrow, whose import (with
    numpy's) costs about 0.2 s, a fifth of a short report's run; and polars' own handling of
    a DuckDB relation leaves DuckDB objects alive at exit, which DuckDB's bindings then list
    as "leaked" on stderr. Bulk writes take as long this way (2.1 million priced events:
    2.2-2.4 s either way).
    """

    def __init__(self, source: pl.DataFrame | duckdb.DuckDBPyRelation) -> None:
        self.source = source

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        return self.source.__arrow_c_stream__(requested_schema)


def _frame(relation: duckdb.DuckDBPyRelation) -> pl.DataFrame:
    return pl.DataFrame(ArrowStream(relation))


def _scannable(frame: pl.DataFrame) -> object:
    """What DuckDB is given to scan `frame`. A column of polars' Null type (all nulls, no
    type) crosses the C stream interface in a form DuckDB rejects ("a non-zero null count
    but no validity bitmap"); pyarrow's conversion of it DuckDB reads as typeless nulls."""
    if pl.Null in frame.dtypes:
        return frame.to_arrow()
    return ArrowStream(frame)


def _revision_comment(name: str, revision: int) -> str:
    """What a table's comment says of the definition it was built for (a table built before
    revisions were recorded has none, and counts as revision 1)."""
    return f"tally {name} revision {revision}"


class DuckDBWarehouse:
    def __init__(self, url: str, lock_wait_seconds: float | None = None) -> None:
        self.url = url
        self.lock_wait_seconds = (
            LOCK_WAIT_SECONDS if lock_wait_seconds is None else lock_wait_seconds
        )
        # duckdb:///abs/path.duckdb -> /abs/path.duckdb; duckdb://rel/path -> rel/path
        location = url.removeprefix("duckdb://")
        if location.startswith("//"):  # duckdb:////abs (an absolute path after duckdb:///)
            location = "/" + location.lstrip("/")
        self.path = Path(location).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # tables known to match their definitions: checked once per object, not per operation
        self._ensured: set[str] = set()
        self._held: duckdb.DuckDBPyConnection | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        """The operations inside share one connection: opening the file costs 40-90 ms
        here, and a report makes three or four operations. The file stays locked until the
        block ends, so only short commands should hold it."""
        if self._held is not None:
            yield
            return
        self._held = self._open()
        try:
            self._held.execute("SET TimeZone = 'UTC'")
            yield
        finally:
            self._held.close()
            self._held = None

    @contextmanager
    def _connect(
        self, frames: dict[str, pl.DataFrame] | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection, with `frames` registered as tables until it closes (or, on the
        held connection, until the operation ends)."""
        if self._held is not None:
            for name, frame in (frames or {}).items():
                self._held.register(name, _scannable(frame))
            try:
                yield self._held
            finally:
                for name in frames or {}:
                    self._held.unregister(name)
            return
        connection = self._open()
        try:
            connection.execute("SET TimeZone = 'UTC'")
            for name, frame in (frames or {}).items():
                connection.register(name, _scannable(frame))
            yield connection
        finally:
            connection.close()

    def _open(self) -> duckdb.DuckDBPyConnection:
        """Open the file, waiting while another process holds it: a report started during a
        materialisation answers once the write is done instead of failing at once."""
        deadline = time.monotonic() + self.lock_wait_seconds
        pause = 0.05
        while True:
            try:
                return duckdb.connect(str(self.path))
            except duckdb.IOException as error:
                if "lock" not in str(error).lower():
                    raise WarehouseUnreadable(
                        f"cannot open the warehouse {self.path}: {first_line(error, 'IO error')}"
                        " (it holds only derived tables: move it away and `tally materialize` "
                        "builds it again)"
                    ) from None
                if time.monotonic() >= deadline:
                    holder = _LOCK_HOLDER.search(str(error))
                    who = f" (process {holder.group(1)})" if holder else ""
                    raise WarehouseBusy(
                        f"the warehouse {self.path} is in use by another process{who} and was "
                        f"not released within {self.lock_wait_seconds:g} s: a materialisation "
                        "may be writing it; try again when it has finished"
                    ) from None
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def ensure_table(self, table: WarehouseTable) -> None:
        """Create the table; one whose columns differ from its definition, or that was built
        for another revision of it (an older tally), is dropped and created again: warehouse
        tables are derived, re-materialising refills them."""
        if table.name in self._ensured:
            return
        with self._connect() as connection:
            self._ensure(connection, table)

    def _ensure(self, connection: duckdb.DuckDBPyConnection, table: WarehouseTable) -> None:
        if table.name in self._ensured:
            return
        columns = ", ".join(f'"{name}" {TYPES[kind]}' for name, kind in table.columns)
        existing = connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position",
            [table.name],
        ).fetchall()
        revision = _revision_comment(table.name, table.revision)
        if existing:
            comment = connection.execute(
                "SELECT comment FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'",
                [table.name],
            ).fetchall()  # fetchone would leave the result open, which DuckDB refuses later
            built_for = (comment[0][0] if comment else None) or _revision_comment(table.name, 1)
            if [row[0] for row in existing] != list(table.column_names) or built_for != revision:
                connection.execute(f'DROP TABLE "{table.name}"')
                existing = []
        if not existing:
            connection.execute(f'CREATE TABLE "{table.name}" ({columns})')
            connection.execute(f"COMMENT ON TABLE \"{table.name}\" IS '{revision}'")
        self._ensured.add(table.name)

    def replace_window(
        self, table: WarehouseTable, start: date, end: date, frame: pl.DataFrame
    ) -> int:
        ordered = frame.select(table.column_names)
        with self._connect() as connection:
            self._ensure(connection, table)
            # Rows land in any order (both threads insert at once): 10 million priced events
            # took 18 s and take 11 s. Nothing reads them in insertion order; every report
            # sorts what it shows.
            connection.execute("SET preserve_insertion_order = false")
            connection.execute("BEGIN TRANSACTION")
            try:
                connection.execute(
                    f'DELETE FROM "{table.name}" WHERE "{table.window_column}" >= ? '
                    f'AND "{table.window_column}" < ?',
                    [start, end],
                )
                connection.register("incoming", _scannable(ordered))
                connection.execute(f'INSERT INTO "{table.name}" SELECT * FROM incoming')
                connection.unregister("incoming")
                connection.execute("COMMIT")
            except BaseException:
                _roll_back(connection)
                raise
        return ordered.height

    def read_window(self, table: WarehouseTable, start: date, end: date) -> pl.DataFrame:
        with self._connect() as connection:
            self._ensure(connection, table)
            relation = connection.sql(
                f'SELECT * FROM "{table.name}" WHERE "{table.window_column}" >= $start '
                f'AND "{table.window_column}" < $end',
                params={"start": start, "end": end},
            )
            return _frame(relation)

    def query(
        self,
        sql: str,
        params: dict[str, Any] | None = None,
        frames: dict[str, pl.DataFrame] | None = None,
    ) -> pl.DataFrame:
        with self._connect(frames) as connection:
            return _frame(connection.sql(sql, params=params or None))

    def query_batches(
        self,
        sql: str,
        params: dict[str, Any] | None = None,
        batch_rows: int = 50_000,
        frames: dict[str, pl.DataFrame] | None = None,
    ) -> Iterator[pl.DataFrame]:
        # the file stays open (and closed to writers) until the last batch is taken
        with self._connect(frames) as connection:
            reader = connection.sql(sql, params=params or None).to_arrow_reader(batch_rows)
            for batch in reader:
                frame = pl.from_arrow(batch)
                assert isinstance(frame, pl.DataFrame)
                yield frame

    def days_with_data(self, table: WarehouseTable) -> list[date]:
        self.ensure_table(table)
        frame = self.query(
            f'SELECT DISTINCT "{table.window_column}" AS day FROM "{table.name}" ORDER BY 1'
        )
        return list(frame["day"])

    def rows_by_day(self, table: WarehouseTable, start: date, end: date) -> dict[date, int]:
        self.ensure_table(table)
        frame = self.query(
            f'SELECT "{table.window_column}" AS day, count(*) AS n FROM "{table.name}" '
            f'WHERE "{table.window_column}" >= $start AND "{table.window_column}" < $end '
            "GROUP BY 1",
            {"start": start, "end": end},
        )
        return dict(zip(frame["day"], frame["n"], strict=True))


def _roll_back(connection: duckdb.DuckDBPyConnection) -> None:
    """A COMMIT that failed (the disk filled while it wrote) has already ended the
    transaction: the ROLLBACK's own error ("no transaction is active") would replace the one
    that says what went wrong."""
    with suppress(duckdb.Error):
        connection.execute("ROLLBACK")
