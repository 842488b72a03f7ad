"""Warehouse errors, importable without polars or a backend: every command's failure handling
imports them, and importing polars starts threads (see `pipelines/cli/ui.py`)."""

from __future__ import annotations


class WarehouseUnavailable(RuntimeError):
    """The warehouse cannot be opened; the message says why and what to do."""


class WarehouseBusy(WarehouseUnavailable):
    """Another process holds the warehouse (DuckDB admits one process at a time) for longer
    than this one was willing to wait."""


class WarehouseUnreadable(WarehouseUnavailable):
    """The warehouse's file cannot be opened as a warehouse: not a DuckDB database, not
    readable, or in a directory that cannot be created."""
