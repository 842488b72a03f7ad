"""What every warehouse asset reports: row counts and a markdown preview of the top rows."""

from __future__ import annotations

from typing import Any

import dagster as dg
import polars as pl


def preview(frame: pl.DataFrame, rows: int = 10) -> dg.MetadataValue:
    if frame.is_empty():
        return dg.MetadataValue.md("_no rows_")
    head = frame.head(rows)
    header = "| " + " | ".join(head.columns) + " |"
    rule = "| " + " | ".join("---" for _ in head.columns) + " |"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in head.iter_rows()]
    return dg.MetadataValue.md("\n".join([header, rule, *body]))


def _cell(value: Any) -> str:
    return "" if value is None else str(value).replace("|", "\\|")
