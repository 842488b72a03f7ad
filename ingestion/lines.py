"""Read the complete lines of a growing file from a byte offset, in bounded memory.

A line without its newline yet (a writer mid-append) is not yielded: the reader's
`end_offset` stops before it, so the next run starts there. A line longer than the limit is
reported by offset and length and skipped without ever being held whole in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class OversizeLine:
    offset: int
    length: int
    head: bytes


class LineReader:
    def __init__(self, handle: BinaryIO, start: int, max_line_bytes: int) -> None:
        self.handle = handle
        self.start = start
        self.max_line_bytes = max_line_bytes
        self.end_offset = start  # end of the last complete line consumed
        self.bytes_consumed = 0

    def __iter__(self) -> Iterator[tuple[int, bytes] | OversizeLine]:
        handle = self.handle
        handle.seek(self.start)
        pending = b""
        pending_offset = self.start
        skipping: OversizeLine | None = None
        while True:
            chunk = handle.read(CHUNK_BYTES)
            if not chunk:
                return
            if skipping is not None:
                newline = chunk.find(b"\n")
                if newline < 0:
                    skipping.length += len(chunk)
                    continue
                skipping.length += newline + 1
                self._advance(skipping.offset + skipping.length)
                yield skipping
                pending_offset = skipping.offset + skipping.length
                skipping = None
                chunk = chunk[newline + 1 :]
            data = pending + chunk if pending else chunk
            lines = data.split(b"\n")
            pending = lines.pop()
            offset = pending_offset
            for line in lines:
                length = len(line) + 1
                if length > self.max_line_bytes:
                    self._advance(offset + length)
                    yield OversizeLine(offset, length, line[:200])
                else:
                    self._advance(offset + length)
                    yield (offset, line)
                offset += length
            pending_offset = offset
            if len(pending) > self.max_line_bytes:
                skipping = OversizeLine(pending_offset, len(pending), pending[:200])
                pending = b""

    def _advance(self, new_end: int) -> None:
        self.bytes_consumed += new_end - self.end_offset
        self.end_offset = new_end
