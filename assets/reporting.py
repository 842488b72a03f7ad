"""What every warehouse asset reports: its columns, row counts, a markdown preview of the top
rows, and the schema check of its output."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import dagster as dg
import pandera.errors
import pandera.polars as pa
import polars as pl

from schemas.money import decimal_text
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
    if isinstance(value, Decimal):
        return decimal_text(value)  # str() of a zero cost is "0E-12"
    return " ".join(str(value).splitlines()).replace("|", "\\|")


def schema_failures(frame: pl.DataFrame, model: type[pa.DataFrameModel]) -> pl.DataFrame:
    """The pandera model's failing cases on `frame` (none when every row matches)."""
    try:
        model.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        return errors.failure_cases
    return pl.DataFrame()


class SchemaCheck:
    """The `schema` check of an output written a slice at a time: each slice is validated
    as it is written, and the check reports the failures of all of them."""

    def __init__(self, model: type[pa.DataFrameModel]) -> None:
        self.model = model
        self.failures = 0
        self.sample = pl.DataFrame()

    def validate(self, frame: pl.DataFrame) -> None:
        cases = schema_failures(frame, self.model)
        self.failures += cases.height
        if self.sample.is_empty():
            self.sample = cases

    def result(self) -> dg.AssetCheckResult:
        if not self.failures:
            return dg.AssetCheckResult(check_name="schema", passed=True)
        return dg.AssetCheckResult(
            check_name="schema",
            passed=False,
            metadata={"num_failures": self.failures, "failure_sample": preview(self.sample)},
        )


class TopRows:
    """The rows of largest `by` over the slices of an output, for its preview: each slice
    keeps only its own top rows."""

    def __init__(self, by: str, columns: list[str], rows: int = 10) -> None:
        self.by, self.columns, self.rows = by, columns, rows
        self.kept: pl.DataFrame | None = None

    def _top(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.sort(self.by, descending=True, nulls_last=True).head(self.rows)

    def add(self, frame: pl.DataFrame) -> None:
        top = self._top(frame.select(self.columns))
        self.kept = top if self.kept is None else self._top(pl.concat([self.kept, top]))

    def preview(self) -> dg.MetadataValue:
        return preview(self.kept if self.kept is not None else pl.DataFrame())


def rollup_totals(frame: pl.DataFrame, *cost_columns: str) -> dict[str, int | Decimal]:
    """Requests, input and output tokens and cost (the first of `cost_columns` that is set)
    of events, or of a rollup of them (which counts its `requests`): what a rollup's check
    compares with its input, summed over the slices of its window."""
    requests = frame["requests"].sum() if "requests" in frame.columns else frame.height
    cost = frame.select(pl.coalesce(*cost_columns).sum()).item()
    return {
        "requests": int(requests or 0),
        "input_tokens": int(frame["input_tokens"].sum() or 0),
        "output_tokens": int(frame["output_tokens"].sum() or 0),
        "cost_usd": cost or Decimal(0),
    }


def totals_json(totals: Mapping[str, int | Decimal]) -> dg.MetadataValue:
    return dg.MetadataValue.json(
        {k: decimal_text(v) if isinstance(v, Decimal) else v for k, v in totals.items()}
    )
