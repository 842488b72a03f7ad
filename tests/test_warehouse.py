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


_FILL_WHILE_LIMITED = """
import os, resource, signal, sys
from datetime import date, timedelta
import polars as pl
from ingestion.warehouse.base import open_warehouse
from schemas.warehouse import DATE, TEXT, WarehouseTable

path, rows = sys.argv[1], int(sys.argv[2])
table = WarehouseTable("notes", (("day", DATE), ("label", TEXT)), "day", ("day",), "test")
def notes(count: int) -> pl.DataFrame:
    labels = [os.urandom(24).hex() for _ in range(count)]  # incompressible
    days = [date(2026, 10, 1) + timedelta(days=i % 30) for i in range(count)]
    return pl.DataFrame({"day": days, "label": labels})
warehouse = open_warehouse(f"duckdb://{path}")
warehouse.replace_window(table, date(2026, 10, 1), date(2026, 10, 2), notes(1).head(1))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path), resource.RLIM_INFINITY))
try:
    warehouse.replace_window(table, date(2026, 10, 1), date(2026, 11, 1), notes(rows))
except Exception as error:
    print("error:", type(error).__name__, error)
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
print("rows kept:", warehouse.query("SELECT count(*) AS n FROM notes")["n"][0])
warehouse.replace_window(table, date(2026, 10, 1), date(2026, 11, 1), notes(rows))
print("rows after:", warehouse.query("SELECT count(*) AS n FROM notes")["n"][0])
"""


@pytest.mark.parametrize("rows", [20_000, 200_000])
def test_a_write_the_disk_cannot_hold_says_so_and_keeps_the_window(tmp_path, rows):
    """A full disk (here a file-size limit: the same failed write) fails the write while
    inserting or while committing; either way the error says what failed (a COMMIT that
    failed had ended the transaction, and the ROLLBACK's "no transaction is active" hid it),
    the window keeps its rows and the next write succeeds."""
    import subprocess
    import sys
    from pathlib import Path

    result = subprocess.run(
        [sys.executable, "-c", _FILL_WHILE_LIMITED, str(tmp_path / "w.duckdb"), str(rows)],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("error: ") and "File too large" in lines[0], lines
    assert "no transaction is active" not in lines[0]
    assert lines[1:] == ["rows kept: 1", f"rows after: {rows}"]
