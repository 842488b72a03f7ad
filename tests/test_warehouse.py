"""The DuckDB warehouse admits one process at a time: an operation waits for another process
to release the file, and says who holds it when it gives up."""

from __future__ import annotations

import time
from datetime import date

import pytest

from ingestion.warehouse.base import WarehouseBusy, open_warehouse
from schemas.warehouse import COST_DAILY
from tests.warehouse_helpers import hold


def test_an_operation_waits_for_another_process_to_release_the_file(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    open_warehouse(f"duckdb://{path}").ensure_table(COST_DAILY)
    holder = hold(path, 1.5)
    started = time.monotonic()
    rows = open_warehouse(f"duckdb://{path}", lock_wait_seconds=30).query(
        "SELECT count(*) AS n FROM cost_daily"
    )
    assert time.monotonic() - started >= 0.5  # it waited rather than failed
    assert rows["n"].to_list() == [0]
    holder.wait(timeout=10)


def test_a_file_held_too_long_is_reported_with_its_holder(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    holder = hold(path, 20)
    try:
        warehouse = open_warehouse(f"duckdb:///{path}", lock_wait_seconds=0.5)
        with pytest.raises(WarehouseBusy, match=rf"{path} is in use by .*{holder.pid}"):
            warehouse.read_window(COST_DAILY, date(2026, 10, 1), date(2026, 10, 2))
    finally:
        holder.kill()
        holder.wait()
