"""What every warehouse asset reports: its columns, row counts, a markdown preview of the top
rows, and the schema check of its output."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pandera.errors
import pandera.polars as pa
import polars as pl

from schemas.warehouse import WarehouseTable


def table_metadata(table: WarehouseTable) -> dict[str, Any]:
    """Definition metadata of the asset that writes `table`: the UI's column schema (from
    the one table definition every backend creates from), the table's name and the column
    that windows it."""
    return {
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, kind) for name, kind in table.columns]
        ),
        "dagster/table_name": table.name,
        "window_column": table.window_column,
    }


def preview(frame: pl.DataFrame, rows: int = 10) -> dg.MetadataValue:
    if frame.is_empty():
        return dg.MetadataValue.md("_no rows_")
    head = frame.head(rows)
    header = "| " + " | ".join(head.columns) + " |"
    rule = "| " + " | ".join("---" for _ in head.columns) + " |"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in head.iter_rows()]
    return dg.MetadataValue.md("\n".join([header, rule, *body]))


def _cell(value: Any) -> str:
    """A value as one markdown table cell: a pipe or a line break in the data (a path, a
    session key) would otherwise end the cell or the row."""
    if value is None:
        return ""
    return " ".join(str(value).splitlines()).replace("|", "\\|")


def schema_check(frame: pl.DataFrame, model: type[pa.DataFrameModel]) -> dg.AssetCheckResult:
    """The blocking `schema` check every asset runs on its output: the pandera model, with
    the failing cases in the metadata."""
    try:
        model.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        return dg.AssetCheckResult(
            check_name="schema",
            passed=False,
            metadata={"num_failures": cases.height, "failure_sample": preview(cases)},
        )
    return dg.AssetCheckResult(check_name="schema", passed=True)
