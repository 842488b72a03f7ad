"""The DuckDB warehouse admits one process at a time: an operation waits for another process
to release the file, and says who holds it when it gives up. A file that is not a warehouse
is named, with what to do, by every command."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date

import duckdb
import polars as pl
import pytest

from ingestion.warehouse.base import WarehouseBusy, open_warehouse
from ingestion.warehouse.errors import WarehouseUnreadable
from schemas.warehouse import COST_DAILY, WarehouseTable
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


def test_a_file_that_is_not_a_warehouse_is_named_with_the_remedy(tmp_path, tally_env):
    from typer.testing import CliRunner

    from pipelines.cli.main import app

    path = tmp_path / "w.duckdb"
    path.write_bytes(b"\x00" * 5000)
    with pytest.raises(WarehouseUnreadable, match=r"w.duckdb: .*not a valid DuckDB.*move it"):
        open_warehouse(f"duckdb://{path}").ensure_table(COST_DAILY)
    result = CliRunner().invoke(
        app, ["report", "costs"], env={"TALLY_WAREHOUSE_URL": f"duckdb://{path}"}
    )
    assert result.exit_code == 2
    assert "cannot open the warehouse" in " ".join(result.stderr.split())


def test_a_query_read_in_batches_is_the_whole_query_in_order(tmp_path):
    warehouse = open_warehouse(f"duckdb://{tmp_path / 'w.duckdb'}")
    sql = "SELECT range AS n, 'row ' || range AS label FROM range($rows) ORDER BY n DESC"
    batches = list(warehouse.query_batches(sql, {"rows": 25}, batch_rows=10))
    assert [batch.height for batch in batches] == [10, 10, 5]
    whole = warehouse.query(sql, {"rows": 25})
    assert pl.concat(batches).equals(whole)
    assert sum(batch.height for batch in warehouse.query_batches(sql, {"rows": 0})) == 0


def _one_day_of_cost_daily() -> pl.DataFrame:
    schema = {name: pl.Int64 for name in COST_DAILY.column_names}
    row = {name: 1 for name in COST_DAILY.column_names}
    frame = pl.DataFrame([row], schema=schema)
    texts = [name for name, kind in COST_DAILY.columns if kind == "text"]
    return frame.with_columns(
        pl.lit(date(2026, 10, 1)).alias("day"),
        *(pl.lit("x").alias(name) for name in texts),
        *(pl.lit(None, pl.Datetime("us", "UTC")).alias(n) for n in ("first_at", "last_at")),
        pl.lit(False).alias("subscription_covered"),
    )


def test_a_table_built_for_another_revision_of_its_definition_is_emptied(tmp_path):
    """A column whose meaning changed (usage_priced's cost_usd became the auto cost) keeps
    its name: rows built under the old meaning are dropped rather than read beside the new."""
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    day = date(2026, 10, 1)
    first = replace(COST_DAILY, revision=1)
    open_warehouse(url).replace_window(first, day, day, _one_day_of_cost_daily())

    def rows(table: WarehouseTable) -> int:
        warehouse = open_warehouse(url)
        warehouse.ensure_table(table)
        return warehouse.query(f"SELECT count(*) AS n FROM {table.name}")["n"][0]

    assert rows(first) == 1
    # a table an older tally built records no revision: it is taken for revision 1
    with duckdb.connect(str(tmp_path / "w.duckdb")) as connection:
        connection.execute("COMMENT ON TABLE cost_daily IS NULL")
    assert rows(first) == 1
    revised = replace(first, revision=2)
    assert rows(revised) == 0
    open_warehouse(url).replace_window(revised, day, day, _one_day_of_cost_daily())
    assert rows(revised) == 1
    assert rows(first) == 0  # and back: revision 2's rows are no revision 1's either
