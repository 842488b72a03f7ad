"""Encode rows in PostgreSQL's COPY text format, and send them.

Workers encode; the loading process only writes the bytes, which keeps its share of the
work per row close to nothing."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": ""})
COPY_CHUNK_BYTES = 1 << 20


def _text(value: str) -> str:
    # isprintable() is False for tabs, newlines, CR and NUL: the common case skips translate.
    if value.isprintable() and "\\" not in value:
        return value
    return value.translate(_ESCAPES)


def _field(value: Any) -> str:
    if value is None:
        return "\\N"
    kind = type(value)
    if kind is str:
        return _text(value)
    if kind is int:
        return str(value)
    if kind is bool:
        return "t" if value else "f"
    if kind is datetime:
        return value.isoformat()
    if kind is list:
        return _array(value)
    return _text(str(value))


def _array(values: list[Any]) -> str:
    quoted = []
    for item in values:
        text = str(item).replace("\\", "\\\\").replace('"', '\\"')
        quoted.append(f'"{text}"')
    return _text("{" + ",".join(quoted) + "}")


def encode_rows(rows: Iterable[Sequence[Any]]) -> bytes:
    return "".join(["\t".join([_field(v) for v in row]) + "\n" for row in rows]).encode()


def copy_bytes(
    cursor: psycopg.Cursor[Any], table: str, columns: Sequence[str], chunks: list[bytes]
) -> None:
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with cursor.copy(statement) as copy:  # type: ignore[arg-type]
        for chunk in chunks:
            copy.write(chunk)
