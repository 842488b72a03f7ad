"""Warehouse errors, importable without polars or a backend: every command's failure handling
imports them, and importing polars starts threads (see `pipelines/cli/ui.py`)."""

from __future__ import annotations


class WarehouseBusy(RuntimeError):
    """Another process holds the warehouse (DuckDB admits one process at a time) for longer
    than this one was willing to wait."""
