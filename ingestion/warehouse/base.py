"""The warehouse interface every backend implements: create tables from their definitions,
replace exactly one time window atomically, read a window or a query as a polars frame."""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

import polars as pl

from schemas.warehouse import WarehouseTable


class Warehouse(Protocol):
    url: str

    def ensure_table(self, table: WarehouseTable) -> None: ...

    def replace_window(
        self, table: WarehouseTable, start: date, end: date, frame: pl.DataFrame
    ) -> int:
        """Delete the rows of [start, end) and insert `frame`, in one transaction."""
        ...

    def read_window(self, table: WarehouseTable, start: date, end: date) -> pl.DataFrame: ...

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pl.DataFrame: ...

    def days_with_data(self, table: WarehouseTable) -> list[date]: ...


def open_warehouse(url: str) -> Warehouse:
    """`duckdb:///path/to/file.duckdb` (the default) or, for scale-out, ClickHouse."""
    if url.startswith("duckdb://"):
        from ingestion.warehouse.duckdb_backend import DuckDBWarehouse

        return DuckDBWarehouse(url)
    raise ValueError(f"unsupported warehouse URL {url!r}: use duckdb:///path/to/file.duckdb")
