"""What every JSONL adapter does with a line before its own rules apply: skip blank lines,
only note the time of lines that name nothing it reads, parse the rest, and reject what is
not a JSON object or breaks a rule, with the reason."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

import orjson

from ingestion.adapters.common import (
    InvalidRecord,
    lone_surrogates_replaced,
    looks_like_object,
    top_level_timestamp,
)
from ingestion.batch import Batch

# What reading a value of an unexpected type raises in an adapter's rules.
UNFORESEEN_SHAPES = (TypeError, AttributeError, ValueError, KeyError, IndexError, OverflowError)
UTF8_BOM = b"\xef\xbb\xbf"


class JsonlParser:
    path: str
    # Lines holding any of these are parsed in full; the rest only mark session activity.
    parse_markers: tuple[bytes, ...] = ()
    # One scan of the line for all the markers (a compiled alternation): a scan per marker
    # cost three to four passes over every line.
    _find_marker: ClassVar[Callable[[bytes], object]] = staticmethod(lambda line: None)
    # Of the lines not parsed, only those holding this mark the session active: another
    # tool's log read by mistake (a Codex rollout as a Claude transcript) made sessions of
    # its lines' times.
    activity_marker: ClassVar[bytes | None] = None
    foreign_reported = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.parse_markers:
            pattern = re.compile(b"|".join(re.escape(marker) for marker in cls.parse_markers))
            cls._find_marker = staticmethod(pattern.search)

    def handle_line(self, offset: int, line: bytes, batch: Batch) -> int:
        """Parse one line into the batch; returns the number of usage records it held."""
        if offset == 0 and line.startswith(UTF8_BOM):
            line = line[len(UTF8_BOM) :]  # Windows tools write one; orjson refuses it
        if not line.strip():
            return 0
        if self._find_marker(line) is None and looks_like_object(line):
            marker = self.activity_marker
            at = top_level_timestamp(line) if marker is None or marker in line else None
            if at is not None:
                self.observe(at, batch)
            return 0
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            try:
                if "surrogate" not in str(error):
                    raise
                obj = orjson.loads(lone_surrogates_replaced(line))
            except orjson.JSONDecodeError:
                batch.reject(self.path, str(offset), f"invalid JSON: {error}", line)
                return 0
        if not isinstance(obj, dict):
            kind = type(obj).__name__
            batch.reject(self.path, str(offset), f"not a JSON object (a {kind})", line)
            return 0
        try:
            return self.handle_object(obj, offset, batch)
        except InvalidRecord as error:
            batch.reject(self.path, str(offset), str(error), line)
            return 0
        except UNFORESEEN_SHAPES as error:
            # A shape no rule names (a list where an id belongs, say) costs that line, not
            # the file and the run; the reason says what broke, for `tally rejects`.
            reason = f"unreadable record ({type(error).__name__}: {error})"
            batch.reject(self.path, str(offset), reason, line)
            return 0

    def foreign(self, line_kind: str, reader: str) -> int:
        """A line of another tool's log: the first of a file is rejected saying which tool's
        and what reads it, the rest are passed over (a whole mistaken directory would
        otherwise reject every line)."""
        if self.foreign_reported:
            return 0
        self.foreign_reported = True
        raise InvalidRecord(
            f"{line_kind} line, which this source does not read (`{reader}` reads it): the "
            "file's other lines of that kind are passed over"
        )

    def observe(self, at: datetime, batch: Batch) -> None:
        """A line that only shows the session was active at `at`."""
        raise NotImplementedError

    def handle_object(self, obj: dict[str, Any], offset: int, batch: Batch) -> int:
        raise NotImplementedError
