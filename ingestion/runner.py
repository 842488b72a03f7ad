"""One ingestion run over a directory of agent logs: decide per file what to read, parse the
new bytes, load them in batches, and keep the cursors in step with what was committed."""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg

from ingestion.batch import Batch
from ingestion.lines import LineReader, OversizeLine
from ingestion.loader import CanonicalLoader, CursorUpdate, LoadResult, ensure_company
from ingestion.sources import FileSource

HEAD_BYTES = 4096
MAX_LOCKED_FILES = 256


class SourceDirectoryMissing(FileNotFoundError):
    pass


class IngestListener(Protocol):
    def discovered(self, files: int, total_bytes: int) -> None: ...

    def advanced(self, files: int, bytes_read: int, events: int) -> None: ...


@dataclass
class IngestSummary:
    source: str
    run_id: int = 0
    files_seen: int = 0
    files_read: int = 0
    files_unchanged: int = 0
    files_busy: int = 0
    bytes_read: int = 0
    lines_read: int = 0
    events_seen: int = 0
    events_new: int = 0
    events_merged: int = 0
    tool_calls: int = 0
    sessions: int = 0
    rejects: int = 0

    def add(self, result: LoadResult) -> None:
        self.events_new += result.events_new
        self.events_merged += result.events_merged
        self.tool_calls += result.tool_calls
        self.sessions += result.sessions
        self.rejects += result.rejects

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def head_fingerprint(handle: Any, length: int) -> str:
    # pread leaves the file position alone: the line reader is mid-file.
    head = os.pread(handle.fileno(), length, 0)
    return f"{length}:{hashlib.sha1(head).hexdigest()}"


@dataclass
class _OpenFile:
    path: str
    identity: str
    size: int
    mtime_ns: int
    fingerprint_length: int


class IngestRun:
    def __init__(
        self,
        conninfo: str,
        source: FileSource,
        root: Path,
        *,
        company: str,
        batch_rows: int,
        max_line_bytes: int,
        listener: IngestListener | None = None,
    ) -> None:
        self.conninfo = conninfo
        self.source = source
        self.root = root
        self.company = company
        self.batch_rows = batch_rows
        self.max_line_bytes = max_line_bytes
        self.listener = listener
        self.summary = IngestSummary(source=source.name)

    def run(self) -> IngestSummary:
        if not self.root.is_dir():
            raise SourceDirectoryMissing(f"{self.source.label} directory not found: {self.root}")
        files = self.source.discover(self.root)
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            company_id = ensure_company(conn, self.company)
            loader = CanonicalLoader(conn, company_id, self.source.name)
            self.summary.run_id = loader.start_run({"path": str(self.root)})
            try:
                self._ingest(loader, files)
            except BaseException as error:
                loader.finish_run("failed", self._counters(), f"{type(error).__name__}: {error}")
                raise
            loader.finish_run("succeeded", self._counters())
        return self.summary

    def _counters(self) -> dict[str, int]:
        s = self.summary
        return {
            "files_seen": s.files_seen,
            "files_read": s.files_read,
            "bytes_read": s.bytes_read,
            "lines_read": s.lines_read,
            "events_new": s.events_new,
            "events_merged": s.events_merged,
            "tool_calls_seen": s.tool_calls,
            "sessions_seen": s.sessions,
            "rejects": s.rejects,
        }

    def _ingest(self, loader: CanonicalLoader, files: list[Path]) -> None:
        cursors = loader.load_cursors()
        todo: list[tuple[Path, os.stat_result]] = []
        for path in files:
            self.summary.files_seen += 1
            try:
                stat = path.stat()
            except OSError:
                continue
            known = cursors.get(str(path))
            if known is not None and _unchanged(known, stat):
                self.summary.files_unchanged += 1
                continue
            todo.append((path, stat))
        if self.listener:
            self.listener.discovered(len(todo), sum(stat.st_size for _, stat in todo))

        batch = Batch()
        done: list[CursorUpdate] = []
        locked: list[str] = []
        for start in range(0, len(todo), MAX_LOCKED_FILES):
            chunk = todo[start : start + MAX_LOCKED_FILES]
            granted = set(loader.try_lock_files([str(path) for path, _ in chunk]))
            # A file another run holds is skipped: that run loads it.
            self.summary.files_busy += len(chunk) - len(granted)
            for path, stat in chunk:
                if str(path) not in granted:
                    continue
                locked.append(str(path))
                batch = self._read_file(loader, path, stat, cursors.get(str(path)), batch, done)
            batch = self._flush(loader, batch, done, locked, None)

    def _read_file(
        self,
        loader: CanonicalLoader,
        path: Path,
        stat: os.stat_result,
        known: tuple[Any, ...] | None,
        batch: Batch,
        done: list[CursorUpdate],
    ) -> Batch:
        key = str(path)
        identity = f"{stat.st_dev}:{stat.st_ino}"
        try:
            handle = open(path, "rb")  # noqa: SIM115 (closed by the with below)
        except OSError as error:
            batch.reject(key, "file", f"cannot open: {error.strerror}", b"")
            return batch
        with handle:
            start, state = _resume_point(known, identity, stat.st_size, handle)
            parser = self.source.parser(path, self.root, state)
            reader = LineReader(handle, start, self.max_line_bytes)
            opened = _OpenFile(key, identity, stat.st_size, stat.st_mtime_ns, 0)
            reported = 0
            for item in reader:
                self.summary.lines_read += 1
                if isinstance(item, OversizeLine):
                    batch.reject(
                        key,
                        str(item.offset),
                        f"line of {item.length} bytes exceeds the {self.max_line_bytes}-byte "
                        "limit (TALLY_MAX_LINE_BYTES)",
                        item.head,
                    )
                    continue
                offset, line = item
                self.summary.events_seen += parser.handle_line(offset, line, batch)
                if len(batch) >= self.batch_rows:
                    checkpoint = self._cursor(
                        opened, handle, reader.end_offset, parser.state(), finished=False
                    )
                    batch = self._flush(loader, batch, done, [], checkpoint)
                    if self.listener:
                        self.listener.advanced(0, reader.bytes_consumed - reported, 0)
                        reported = reader.bytes_consumed
            self.summary.bytes_read += reader.bytes_consumed
            self.summary.files_read += 1
            done.append(self._cursor(opened, handle, reader.end_offset, parser.state()))
            if self.listener:
                self.listener.advanced(
                    1, reader.bytes_consumed - reported, self.summary.events_seen
                )
        return batch

    def _cursor(
        self,
        opened: _OpenFile,
        handle: Any,
        offset: int,
        state: dict[str, Any],
        *,
        finished: bool = True,
    ) -> CursorUpdate:
        """Where this file's reading stands. A checkpoint taken mid-file records its own
        offset as the size, so the next run sees the file as changed and reads on."""
        return CursorUpdate(
            path=opened.path,
            file_identity=opened.identity,
            file_size=opened.size if finished else offset,
            file_mtime_ns=opened.mtime_ns,
            byte_offset=offset,
            head_fingerprint=head_fingerprint(handle, min(HEAD_BYTES, offset)),
            state=state,
        )

    def _flush(
        self,
        loader: CanonicalLoader,
        batch: Batch,
        done: list[CursorUpdate],
        locked: list[str],
        checkpoint: CursorUpdate | None,
    ) -> Batch:
        cursors = [*done, checkpoint] if checkpoint else list(done)
        if not batch.is_empty() or cursors:
            self.summary.add(loader.flush(batch, cursors))
        done.clear()
        loader.unlock_files(locked)
        locked.clear()
        return Batch()


def _unchanged(known: tuple[Any, ...], stat: os.stat_result) -> bool:
    _, identity, size, mtime_ns, *_ = known
    return (
        identity == f"{stat.st_dev}:{stat.st_ino}"
        and size == stat.st_size
        and mtime_ns == stat.st_mtime_ns
    )


def _resume_point(
    known: tuple[Any, ...] | None, identity: str, size: int, handle: Any
) -> tuple[int, dict[str, Any]]:
    """Where to start reading: after the last complete line read before, or from the top
    when the file is new, was truncated, or was replaced by another file."""
    if known is None:
        return 0, {}
    _, known_identity, _, _, offset, fingerprint, state = known
    if known_identity != identity or size < offset:
        return 0, {}
    length = int(str(fingerprint).split(":", 1)[0])
    if head_fingerprint(handle, length) != fingerprint:
        return 0, {}
    return offset, dict(state or {})
