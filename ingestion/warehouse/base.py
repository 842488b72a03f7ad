"""The warehouse interface every backend implements: create tables from their definitions,
replace exactly one time window atomically, read a window or a query as a polars frame."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import date
from typing import Any, Protocol

import polars as pl

from ingestion.warehouse.errors import WarehouseBusy
from schemas.warehouse import WarehouseTable

__all__ = ["Warehouse", "WarehouseBusy", "open_warehouse"]


class Warehouse(Protocol):
    url: str

    def ensure_table(self, table: WarehouseTable) -> None: ...

    def held(self) -> AbstractContextManager[None]:
        """The operations inside may share one connection (a command making several)."""
        ...

    def replace_window(
        self, table: WarehouseTable, start: date, end: date, frame: pl.DataFrame
    ) -> int:
        """Delete the rows of [start, end) and insert `frame`, in one transaction."""
        ...

    def read_window(self, table: WarehouseTable, start: date, end: date) -> pl.DataFrame: ...

    def query(
        self,
        sql: str,
        params: dict[str, Any] | None = None,
        frames: dict[str, pl.DataFrame] | None = None,
    ) -> pl.DataFrame:
        """`frames` are visible to `sql` as tables of those names, for this query only."""
        ...

    def query_batches(
        self,
        sql: str,
        params: dict[str, Any] | None = None,
        batch_rows: int = 50_000,
        frames: dict[str, pl.DataFrame] | None = None,
    ) -> Iterator[pl.DataFrame]:
        """The result of `sql` a batch at a time, for exports too big to hold at once."""
        ...

    def days_with_data(self, table: WarehouseTable) -> list[date]: ...

    def rows_by_day(self, table: WarehouseTable, start: date, end: date) -> dict[date, int]:
        """How many rows each day of [start, end) holds (days without rows left out)."""
        ...


def open_warehouse(url: str, *, lock_wait_seconds: float | None = None) -> Warehouse:
    """`duckdb:///path/to/file.duckdb` (the only backend so far). `lock_wait_seconds`: how
    long an operation waits for another process to release the file before `WarehouseBusy`
    (default: the backend's)."""
    if url.startswith("duckdb://"):
        from ingestion.warehouse.duckdb_backend import DuckDBWarehouse

        return DuckDBWarehouse(url, lock_wait_seconds)
    raise ValueError(f"unsupported warehouse URL {url!r}: use duckdb:///path/to/file.duckdb")
