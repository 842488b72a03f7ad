"""Render rows as a rich table, JSON or CSV: one function for every report."""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def render(
    rows: Sequence[dict[str, Any]],
    fmt: OutputFormat,
    *,
    title: str | None = None,
    columns: Sequence[str] | None = None,
) -> None:
    columns = list(columns or (rows[0].keys() if rows else []))
    if fmt is OutputFormat.json:
        sys.stdout.write(
            orjson.dumps(list(rows), default=_default, option=orjson.OPT_INDENT_2).decode() + "\n"
        )
        return
    if fmt is OutputFormat.csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        sys.stdout.write(buffer.getvalue())
        return
    table = Table(title=title, show_lines=False)
    for column in columns:
        numeric = bool(rows) and isinstance(rows[0].get(column), int | float | Decimal)
        table.add_column(
            SHORT_HEADERS.get(column, column.replace("_", " ")),
            justify="right" if numeric else "left",
            no_wrap=True,
        )
    for row in rows:
        # a cell is data, never markup: a project path holding "[/]" once crashed the table
        table.add_row(*(escape(_cell(column, row.get(column))) for column in columns))
    # Piped or logged output gets room for every column instead of rich's 80-column default.
    Console(width=None if sys.stdout.isatty() else 220).print(table)


def output_path(output: str, default_name: str) -> Path:
    """Where `--output` means: a directory, existing or written with a trailing slash, gets
    `default_name` inside it (made if missing); anything else is the file itself."""
    path = Path(output).expanduser()
    names_a_directory = output.endswith(("/", os.sep))
    return path / default_name if names_a_directory or path.is_dir() else path


@contextmanager
def written_to(path: Path) -> Iterator[None]:
    """What the block prints goes to `path` (its directory made) instead of stdout; a path
    that cannot be written is one clear line, not a traceback."""
    from pipelines.cli.context import CommandFailed

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = path.open("w", encoding="utf-8", newline="")
    except OSError as error:
        raise CommandFailed(f"cannot write {path}: {error.strerror}") from None
    with stream, redirect_stdout(stream):
        yield


SHORT_HEADERS = {
    "input_tokens": "input",
    "output_tokens": "output",
    "reasoning_tokens": "reasoning",
    "cache_read_tokens": "cache read",
    "cache_write_5m_tokens": "cache write 5m",
    "cache_write_1h_tokens": "cache write 1h",
    "first_at": "first (UTC)",
    "last_at": "last (UTC)",
}


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, Decimal):
        return f"{value:,.4f}"  # tables round; JSON and CSV keep every digit
    text = str(value)
    if column.endswith("_at") and len(text) >= 16 and text[10] == "T":
        return f"{text[:10]} {text[11:16]}"  # to the minute; JSON and CSV keep full precision
    return text
