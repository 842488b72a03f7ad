"""Parse one piece of one file: from a resume point to the end, or until a record budget is
spent. A plain function of picklable values, so worker processes can run it."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingestion.batch import Batch
from ingestion.lines import LineReader, OversizeLine
from ingestion.loader import EncodedBatch, FileCursor, encode_batch

HEAD_BYTES = 4096


@dataclass(frozen=True)
class ParseTask:
    source: str  # FileSource.label
    path: str
    root: str
    identity: str  # device:inode seen when the run listed the file
    size: int
    mtime_ns: int
    max_line_bytes: int
    max_records: int
    known: FileCursor | None = None  # the stored cursor, for the first piece
    start: int | None = None  # for a continuation piece
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParseResult:
    task: ParseTask
    encoded: EncodedBatch = field(default_factory=EncodedBatch)
    end_offset: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    tail_fingerprint: str = ""
    bytes_read: int = 0
    lines: int = 0
    events: int = 0
    finished: bool = True


def head_fingerprint(fileno: int, length: int) -> str:
    # pread leaves the file position alone: the line reader may be mid-file.
    head = os.pread(fileno, length, 0)
    return f"{length}:{hashlib.sha1(head).hexdigest()}"


def tail_fingerprint(fileno: int, end: int) -> str:
    """The last bytes before `end` (at most HEAD_BYTES), as `head_fingerprint` words it."""
    length = min(HEAD_BYTES, end)
    return f"{length}:{hashlib.sha1(os.pread(fileno, length, end - length)).hexdigest()}"


def resume_point(
    known: FileCursor | None, identity: str, size: int, fileno: int
) -> tuple[int, dict[str, Any]]:
    """Where to start: after the last complete line read before, or from the top when the
    file is new, was truncated, was replaced by another file, or was rewritten in place
    (its first bytes kept, others changed before the offset: starting there would read half
    a line and never what changed). Reading again from the top is always safe: every record
    has its natural key."""
    if known is None:
        return 0, {}
    offset, tail = known.byte_offset, known.tail_fingerprint
    if known.file_identity != identity or size < offset:
        return 0, {}
    length = int(known.head_fingerprint.split(":", 1)[0])
    if head_fingerprint(fileno, length) != known.head_fingerprint:
        return 0, {}
    if tail is not None and tail_fingerprint(fileno, offset) != tail:
        return 0, {}
    if tail is None and offset > 0 and os.pread(fileno, 1, offset - 1) != b"\n":
        return 0, {}  # a cursor from before tail fingerprints: the offset must end a line
    return offset, dict(known.state or {})


def parse_piece(task: ParseTask) -> ParseResult:
    from ingestion.sources import FILE_SOURCES

    source = FILE_SOURCES[task.source]
    batch = Batch()
    result = ParseResult(task=task)
    try:
        handle = open(task.path, "rb")  # noqa: SIM115 (closed by the with below)
    except FileNotFoundError:
        # Deleted since the run listed it (Claude Code removes old transcripts): no bad input,
        # and what was read of it before stays stored.
        return result
    except OSError as error:
        batch.reject(task.path, "file", f"cannot open: {error.strerror}", b"")
        result.encoded = encode_batch(batch)
        return result  # no fingerprint: no cursor, so the next run tries again
    with handle:
        if task.start is None:
            start, state = resume_point(task.known, task.identity, task.size, handle.fileno())
        else:
            start, state = task.start, task.state
        parser = source.parser(Path(task.path), Path(task.root), state)
        reader = LineReader(handle, start, task.max_line_bytes)
        for item in reader:
            result.lines += 1
            if isinstance(item, OversizeLine):
                batch.reject(
                    task.path,
                    str(item.offset),
                    f"line of {item.length} bytes exceeds the {task.max_line_bytes}-byte "
                    "limit (TALLY_MAX_LINE_BYTES)",
                    item.head,
                )
                continue
            offset, line = item
            result.events += parser.handle_line(offset, line, batch)
            if len(batch) >= task.max_records:
                result.finished = False
                break
        result.end_offset = reader.end_offset
        result.bytes_read = reader.bytes_consumed
        result.state = parser.state()
        result.fingerprint = head_fingerprint(handle.fileno(), min(HEAD_BYTES, result.end_offset))
        result.tail_fingerprint = tail_fingerprint(handle.fileno(), result.end_offset)
    result.encoded = encode_batch(batch)
    return result


def parse_pieces(tasks: list[ParseTask]) -> list[ParseResult]:
    return [parse_piece(task) for task in tasks]
