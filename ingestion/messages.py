"""Error messages shown to people: the first line of a message (a database or Dagster error
carries a detail block and a traceback below it)."""

from __future__ import annotations


def first_line(message: object, default: str) -> str:
    text = str(message).strip() if message is not None else ""
    return text.splitlines()[0] if text else default
