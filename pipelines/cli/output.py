"""Render rows as a rich table, JSON or CSV: one function for every report."""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from decimal import Decimal
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from schemas.money import decimal_text


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return decimal_text(value)
    raise TypeError(type(value).__name__)


def render(
    rows: Iterable[dict[str, Any]],
    fmt: OutputFormat,
    *,
    title: str | None = None,
    columns: Sequence[str] | None = None,
) -> None:
    """JSON and CSV are written 10,000 rows at a time, so an export of millions of rows (a
    generator) never sits in memory; a table, or rows whose columns are not given, are
    gathered first."""
    if fmt is OutputFormat.json:
        _write_json(rows)
        return
    if columns is None or fmt is OutputFormat.table:
        rows = list(rows)
        columns = list(columns or (rows[0].keys() if rows else []))
    if fmt is OutputFormat.csv:
        _write_csv(rows, columns)
        return
    assert isinstance(rows, list)
    table = Table(title=title, show_lines=False)
    # a cell is data, never markup: a project path holding "[/]" once crashed the table
    cells = [[escape(_cell(column, row.get(column))) for column in columns] for row in rows]
    narrowest, widest = [], []
    for index, column in enumerate(columns):
        numeric = bool(rows) and isinstance(rows[0].get(column), int | float | Decimal)
        header = SHORT_HEADERS.get(column, column.replace("_", " "))
        longest = max((len(row[index]) for row in cells), default=0)
        narrowest.append(max(longest if numeric else min(longest, TEXT_MIN_WIDTH), 1))
        widest.append(max(longest, len(header)))
        # When the table is wider than the screen, the widest text wraps; a number cut short
        # ("39.50…") would read as another number. Text without spaces (a model, a session
        # id) folds onto the next line: cut, "claude-sonnet-4-2…" named two models. Only a
        # record's excerpt, a preview to begin with, is cut.
        table.add_column(header, justify="right" if numeric else "left", no_wrap=numeric,
                         min_width=narrowest[-1],
                         overflow="ellipsis" if column in CUT_COLUMNS else "fold")  # fmt: skip
    for row in cells:
        table.add_row(*row)
    # Piped or logged output gets room for every column instead of rich's 80-column default.
    console = Console(width=None if sys.stdout.isatty() else 220)
    # Narrower than every column at its narrowest, rich takes the same width from each
    # column and short ones (an id, a month) vanish: the table is printed whole instead, one
    # line per row, past the screen's edge.
    if console.width < _table_width(narrowest):
        console = Console(width=_table_width(widest))
    console.print(table)


def _table_width(column_widths: list[int]) -> int:
    return sum(width + 3 for width in column_widths) + 1  # padding and borders


# How narrow a text column may become when the table does not fit.
TEXT_MIN_WIDTH = 10
# Text columns cut short, rather than folded, when the table does not fit.
CUT_COLUMNS = frozenset({"excerpt"})


def _write_json(rows: Iterable[dict[str, Any]], chunk_rows: int = 10_000) -> None:
    """The same text as one indented JSON array of every row, written a chunk of rows at a
    time: each chunk is dumped as an array whose brackets are dropped."""
    opened = False
    iterator = iter(rows)
    while chunk := list(islice(iterator, chunk_rows)):
        text = orjson.dumps(chunk, default=_default, option=orjson.OPT_INDENT_2).decode()
        sys.stdout.write(("[\n" if not opened else ",\n") + text[2:-2])  # without "[\n", "\n]"
        opened = True
    sys.stdout.write("\n]\n" if opened else "[]\n")


# A spreadsheet opening the CSV runs a cell that begins with one of these as a formula:
# `=HYPERLINK(...)` in an issue title (anyone's to write, upstream) would be live in finance's
# copy of a cost report. An apostrophe in front makes it text (OWASP's advice on CSV export).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _as_text(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    if isinstance(value, Decimal):
        return decimal_text(value)
    return value


def _write_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str],
               chunk_rows: int = 10_000) -> None:  # fmt: skip
    buffer = io.StringIO()  # a chunk at a time: row-sized writes to stdout cost a fifth more
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    iterator = iter(rows)
    while True:
        chunk = list(islice(iterator, chunk_rows))
        writer.writerows({key: _as_text(value) for key, value in row.items()} for row in chunk)
        sys.stdout.write(buffer.getvalue())
        if not chunk:
            return
        buffer.seek(0)
        buffer.truncate()


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
    from pipelines.cli.context import CommandFailed, file_in_the_way

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = path.open("w", encoding="utf-8", newline="")
    except OSError as error:
        blocker = file_in_the_way(error, path.parent)
        why = f"{blocker} is not a directory" if blocker else error.strerror
        raise CommandFailed(f"cannot write {path}: {why}") from None
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
