"""One ingestion run over a directory of agent logs: decide per file what to read, parse the
new bytes in worker processes, load them in batches, and keep the cursors in step with what
was committed.

Files are split into lanes by session tree; each lane loads over its own connection, one
batch at a time and in order, so a file's cursor never runs ahead of its committed rows.
Two lanes keep both cores busy: while one lane's batch merges in PostgreSQL, the other's
does too, and the workers parse ahead of both.
"""

from __future__ import annotations

import contextlib
import os
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import psycopg

from ingestion.adapters.records import RejectRecord
from ingestion.correlation import correlate
from ingestion.loader import (
    CanonicalLoader,
    EncodedBatch,
    FileCursor,
    LoadResult,
    ensure_company,
)
from ingestion.parse_workers import parse_pool
from ingestion.parsing import ParseResult, ParseTask, parse_piece, parse_pieces
from ingestion.settings import TallySettings
from ingestion.sources import FileSource, Listing, walk_jsonl
from ingestion.table_statistics import analyse_grown
from schemas.limits import MAX_PATH_BYTES

# Files a lane locks at a time, and how many finished files it holds locked before it commits
# them: each lock takes a slot of the server's shared lock table (64 per connection by
# default), and 20,000 short transcripts held until a batch filled ran out of it.
MAX_LOCKED_FILES = 256
PARALLEL_MIN_BYTES = 16 * 1024 * 1024
# Units of work each worker may run ahead of loading: workers keep busy while a batch is
# written, and memory stays bounded.
PIECES_AHEAD = 12
UNIT_MAX_FILES = 64
UNIT_MAX_BYTES = 4 * 1024 * 1024
FLUSH_ATTEMPTS = 5
# How long a file another run holds is waited for, once everything else is read.
BUSY_WAIT_SECONDS = 30


class SourceDirectoryMissing(FileNotFoundError):
    pass


class IngestListener(Protocol):
    def discovered(self, files: int, total_bytes: int) -> None: ...

    def advanced(self, files: int, bytes_read: int, events: int) -> None: ...


@dataclass
class IngestSummary:
    source: str
    root: str = ""  # the directory read
    run_id: int = 0
    files_seen: int = 0
    files_read: int = 0
    files_unchanged: int = 0
    files_busy: int = 0
    files_gone: int = 0  # read before, no longer there: their cursors dropped
    bytes_read: int = 0
    lines_read: int = 0
    events_seen: int = 0
    events_new: int = 0
    events_merged: int = 0
    tool_calls_new: int = 0
    tool_calls_seen: int = 0
    sessions: int = 0
    rejects: int = 0

    def add(self, result: LoadResult) -> None:
        self.events_new += result.events_new
        self.events_merged += result.events_merged
        self.tool_calls_new += result.tool_calls_new
        self.tool_calls_seen += result.tool_calls_seen
        self.sessions += result.sessions
        self.rejects += result.rejects

    def counters(self) -> dict[str, int]:
        """The ingestion_runs columns."""
        return {
            "files_seen": self.files_seen,
            "files_read": self.files_read,
            "bytes_read": self.bytes_read,
            "lines_read": self.lines_read,
            "events_new": self.events_new,
            "events_merged": self.events_merged,
            "tool_calls_seen": self.tool_calls_seen,
            "sessions_seen": self.sessions,
            "rejects": self.rejects,
        }


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
        workers: int | None = None,
        parallel_min_bytes: int = PARALLEL_MIN_BYTES,
    ) -> None:
        # `root` is a directory of logs, or one log file: the only one read in its directory.
        # Absolute, so that a file is stored by one path whatever directory a run starts in:
        # `--path projects` once keyed cursors and events by relative paths, and the same
        # files named absolutely (the configured directory) were read again as others.
        root = Path(os.path.abspath(root))
        self.only: str | None = None
        if root.is_file():
            root, self.only = root.parent, root.name
        self.conninfo = conninfo
        self.source = source
        self.root = root
        self.company = company
        self.batch_rows = batch_rows
        self.max_line_bytes = max_line_bytes
        self.listener = listener
        self.workers = workers if workers is not None else min(os.cpu_count() or 1, 4)
        self.parallel_min_bytes = parallel_min_bytes
        self.summary = IngestSummary(source=source.name, root=str(root))
        self.lock = threading.Lock()  # guards summary and listener across lanes

    @classmethod
    def from_settings(
        cls,
        conninfo: str,
        source: FileSource,
        root: Path,
        settings: TallySettings,
        *,
        listener: IngestListener | None = None,
    ) -> IngestRun:
        """A run configured the way every caller configures it: from TALLY_* settings."""
        return cls(
            conninfo,
            source,
            root,
            company=settings.company,
            batch_rows=settings.ingest_batch_rows,
            max_line_bytes=settings.max_line_bytes,
            listener=listener,
            workers=settings.ingest_workers,
            parallel_min_bytes=settings.ingest_parallel_min_bytes,
        )

    def run(self) -> IngestSummary:
        if not self.root.is_dir():
            if self.root.exists():  # a file, a device: not a directory of logs
                raise SourceDirectoryMissing(
                    f"{self.source.label}: {self.root} is not a directory of logs"
                )
            raise SourceDirectoryMissing(f"{self.source.label} directory not found: {self.root}")
        if self.only is not None:  # one named file, whatever its extension
            path = str(self.root / self.only)
            listing = Listing([(path, os.stat(path))])
        else:
            listing = walk_jsonl(self.root)
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            company_id = ensure_company(conn, self.company)
            loader = CanonicalLoader(conn, company_id, self.source.name)
            self.summary.run_id = loader.start_run({"path": str(self.root)})
            try:
                self._ingest(loader, company_id, listing)
            except BaseException as error:
                message = f"{type(error).__name__}: {error}"
                with contextlib.suppress(psycopg.Error):
                    loader.release_all_files()  # the next run must not find them busy
                    loader.finish_run("failed", self.summary.counters(), message)
                raise
            if self.summary.files_read:
                analyse_grown(conn, {"tool_calls": self.summary.tool_calls_seen})
                # new sessions may belong to projects, runs or MCP sessions already known
                correlate(conn, company_id)
            loader.finish_run("succeeded", self.summary.counters())
        return self.summary

    def _ingest(self, loader: CanonicalLoader, company_id: int, listing: Listing) -> None:
        files = listing.files
        unstorable = {path: reason for path, _ in files if (reason := _unstorable(path))}
        if unstorable:
            files = [(path, stat) for path, stat in files if path not in unstorable]
        if unstorable or listing.unreadable:
            self.summary.add(loader.flush(EncodedBatch(rejects=[
                RejectRecord(_shown(path), "file", reason, os.fsencode(path))
                for path, reason in {**listing.unreadable, **unstorable}.items()
            ]), []))  # fmt: skip
        seen = loader.load_file_states()
        if self.only is None:  # the whole directory was listed: what it lacks is gone
            self.summary.files_gone = loader.forget_files(listing.gone(seen, self.root))
        todo: list[tuple[Path, os.stat_result]] = []
        for path, stat in files:
            self.summary.files_seen += 1
            known = seen.get(path)
            if known is not None and _unchanged(known, stat):
                self.summary.files_unchanged += 1
                continue
            todo.append((Path(path), stat))
        # Full cursors (offsets, fingerprints, parser state) only for the files to read.
        cursors = loader.load_cursors([str(path) for path, _ in todo]) if seen else {}
        total_bytes = sum(_bytes_to_read(stat, cursors.get(str(path))) for path, stat in todo)
        if self.listener:
            self.listener.discovered(len(todo), total_bytes)
        if not todo:
            return
        # Worker processes and a second lane pay off only on real volume.
        parallel = total_bytes >= self.parallel_min_bytes and len(todo) > 1 and self.workers > 0
        if not parallel:
            Lane(self, loader, todo, cursors, pool=None, in_flight=1).run()
            return
        lanes_count = min(2, self.workers)
        partitions: list[list[tuple[Path, os.stat_result]]] = [[] for _ in range(lanes_count)]
        trees = self.source.session_trees([path for path, _ in todo])
        for (path, stat), tree in zip(todo, trees, strict=True):
            partitions[_lane_of(tree, lanes_count)].append((path, stat))
        with parse_pool(self.workers) as pool:
            lanes = []
            for index, part in enumerate(partitions):
                lane_loader = loader
                if index:
                    lane_conn = psycopg.connect(self.conninfo, autocommit=True)
                    lane_loader = CanonicalLoader(lane_conn, company_id, self.source.name)
                    lane_loader.params["run"] = loader.params["run"]
                in_flight = max(1, self.workers * PIECES_AHEAD // lanes_count)
                lanes.append(Lane(self, lane_loader, part, cursors, pool, in_flight))
            threads = [threading.Thread(target=lane.run_safely) for lane in lanes[1:]]
            for thread in threads:
                thread.start()
            lanes[0].run_safely()
            for thread in threads:
                thread.join()
            for lane in lanes[1:]:
                lane.loader.conn.close()
            for lane in lanes:
                if lane.error is not None:
                    raise lane.error

    def _task(self, path: Path, stat: os.stat_result, known: FileCursor | None) -> ParseTask:
        return ParseTask(
            source=self.source.label,
            path=str(path),
            root=str(self.root),
            identity=f"{stat.st_dev}:{stat.st_ino}",
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            max_line_bytes=self.max_line_bytes,
            max_records=max(100, self.batch_rows // 4),
            known=known,
        )

    def record(self, result: ParseResult) -> None:
        with self.lock:
            self.summary.lines_read += result.lines
            self.summary.bytes_read += result.bytes_read
            self.summary.events_seen += result.events
            if result.finished:
                self.summary.files_read += 1
            if self.listener:
                self.listener.advanced(
                    int(result.finished), result.bytes_read, self.summary.events_seen
                )

    def loaded(self, result: LoadResult) -> None:
        with self.lock:
            self.summary.add(result)

    def busy(self, files: int) -> None:
        with self.lock:
            self.summary.files_busy += files


class Lane:
    """Loads one partition of the files over one connection, one batch at a time."""

    def __init__(
        self,
        run: IngestRun,
        loader: CanonicalLoader,
        todo: list[tuple[Path, os.stat_result]],
        cursors: dict[str, FileCursor],
        pool: ProcessPoolExecutor | None,
        in_flight: int,
    ) -> None:
        self.run_ = run
        self.loader = loader
        self.todo = todo
        self.cursors = cursors
        self.pool = pool
        self.in_flight = in_flight
        self.error: BaseException | None = None

    def run_safely(self) -> None:
        try:
            self.run()
        except BaseException as error:  # reported by the run's thread
            self.error = error

    def run(self) -> None:
        chunks = (
            self.todo[i : i + MAX_LOCKED_FILES] for i in range(0, len(self.todo), MAX_LOCKED_FILES)
        )

        busy: list[Path] = []

        def feed() -> list[ParseTask]:
            """The next files to parse, locked so that no other run reads them meanwhile."""
            for chunk in chunks:
                granted = set(self.loader.try_lock_files([str(path) for path, _ in chunk]))
                # A file another run holds is left for the end, when it has let go.
                busy.extend(path for path, _ in chunk if str(path) not in granted)
                tasks = [
                    self.run_._task(path, stat, self.cursors.get(str(path)))
                    for path, stat in chunk
                    if str(path) in granted
                ]
                if tasks:
                    return tasks
            if busy:
                return self._retry_busy(busy)
            return []

        batch = EncodedBatch()
        done: list[FileCursor] = []
        completed: list[str] = []  # files whose last piece is in the batch
        for result in _parse_all(self.pool, feed, self.in_flight):
            batch.absorb(result.encoded)
            self.run_.record(result)
            cursor = _cursor_after(result)
            if cursor is not None:
                done.append(cursor)
            if result.finished:
                completed.append(result.task.path)
            if batch.rows >= self.run_.batch_rows or len(completed) >= MAX_LOCKED_FILES:
                batch = self._flush(batch, done, completed)
        self._flush(batch, done, completed)

    def _retry_busy(self, busy: list[Path]) -> list[ParseTask]:
        """Files another run held: wait for each (a live run finishes it, a dead run's
        backend lets go), then read what its fresh cursor says is still new."""
        tasks = []
        waiting, busy[:] = list(busy), []
        for path in waiting:
            if not self.loader.lock_file_waiting(str(path), BUSY_WAIT_SECONDS):
                self.run_.busy(1)
                continue
            try:
                stat = path.stat()
            except OSError:
                self.loader.unlock_files([str(path)])
                continue
            known = self.loader.load_cursors([str(path)]).get(str(path))
            if known is not None and _unchanged(tuple(known[1:4]), stat):
                self.loader.unlock_files([str(path)])  # the other run read it all
                continue
            tasks.append(self.run_._task(path, stat, known))
        return tasks

    def _flush(
        self, batch: EncodedBatch, done: list[FileCursor], completed: list[str]
    ) -> EncodedBatch:
        """Commit the batch with its cursors, then let go of the files it finished."""
        if not batch.is_empty() or done:
            for attempt in range(1, FLUSH_ATTEMPTS + 1):
                try:
                    self.run_.loaded(self.loader.flush(batch, done))
                    break
                except psycopg.errors.DeadlockDetected:
                    # The other lane merged a shared row (a session) in the other order;
                    # the transaction rolled back whole, so it is safe to run again.
                    if attempt == FLUSH_ATTEMPTS:
                        raise
        done.clear()
        self.loader.unlock_files(completed)
        completed.clear()
        return EncodedBatch()


def _unstorable(path: str) -> str | None:
    """Why the store cannot keep the path, if it cannot: a file name that is not UTF-8 comes
    from the file system with surrogate escapes, which PostgreSQL text cannot hold; a path
    longer than MAX_PATH_BYTES could not key the file's cursor."""
    if path.isascii():
        encoded_length = len(path)
    else:
        try:
            encoded_length = len(path.encode())
        except UnicodeEncodeError:
            return (
                "the file name is not valid UTF-8, which the store cannot keep: rename the "
                "file to read it"
            )
    if encoded_length > MAX_PATH_BYTES:
        return (
            f"the path is {encoded_length:,} bytes long; the store keeps paths of at most "
            f"{MAX_PATH_BYTES:,}: move the file nearer the root to read it"
        )
    return None


def _shown(path: str) -> str:
    """The path with its undecodable bytes as replacement characters, and its middle cut out
    when it is too long to key a reject (the whole path is the reject's excerpt)."""
    raw = os.fsencode(path)
    if len(raw) > MAX_PATH_BYTES:
        half = MAX_PATH_BYTES // 2 - 2
        raw = raw[:half] + "…".encode() + raw[-half:]
    return raw.decode("utf-8", "replace")


def _cursor_after(result: ParseResult) -> FileCursor | None:
    if not result.fingerprint:
        return None  # the file could not be read: keep no cursor, so the next run retries
    task = result.task
    return FileCursor(
        path=task.path,
        file_identity=task.identity,
        # A piece that stopped mid-file records its own offset as the size, so a crash
        # before the rest is loaded leaves the file looking changed.
        file_size=task.size if result.finished else result.end_offset,
        file_mtime_ns=task.mtime_ns,
        byte_offset=result.end_offset,
        head_fingerprint=result.fingerprint,
        tail_fingerprint=result.tail_fingerprint,
        state=result.state,
    )


def _lane_of(tree: str, lanes: int) -> int:
    """Files of one session tree (a transcript or rollout and its subagents') share a lane."""
    return zlib.crc32(tree.encode()) % lanes


def _parse_all(
    pool: ProcessPoolExecutor | None, feed: Callable[[], list[ParseTask]], in_flight: int
) -> Iterator[ParseResult]:
    """Parse every task `feed` hands out, piece by piece; a file's next piece starts after its
    previous one is returned, so pieces of one file arrive in order. Pieces travel to the
    workers in units of several files: one round trip per file would cost more than small
    files take to parse."""
    queue: deque[ParseTask] = deque()
    running: set[Future[list[ParseResult]]] = set()
    while True:
        if not queue:
            queue.extend(feed())
        if pool is None:
            if not queue:
                return
            result = parse_piece(queue.popleft())
            if not result.finished:
                queue.appendleft(_continuation(result))
            yield result
            continue
        while len(running) < in_flight:
            unit = _next_unit(queue)
            if not unit:
                queue.extend(feed())
                unit = _next_unit(queue)
            if not unit:
                break
            running.add(pool.submit(parse_pieces, unit))
        if not running:
            return
        finished, running = wait(running, return_when=FIRST_COMPLETED)
        for future in finished:
            for result in future.result():
                if not result.finished:
                    queue.appendleft(_continuation(result))
                yield result


def _next_unit(queue: deque[ParseTask]) -> list[ParseTask]:
    unit: list[ParseTask] = []
    size = 0
    while queue and len(unit) < UNIT_MAX_FILES and size < UNIT_MAX_BYTES:
        task = queue.popleft()
        unit.append(task)
        size += task.size - (task.start or 0)
    return unit


def _continuation(result: ParseResult) -> ParseTask:
    return replace(result.task, known=None, start=result.end_offset, state=result.state)


def _bytes_to_read(stat: os.stat_result, cursor: FileCursor | None) -> int:
    """What a file adds to the run, as far as its cursor tells before the file is opened: the
    bytes after the stored offset, or all of them when the file is new, another file or
    shorter than before. Counting whole files, a refresh that appended 1 MB to big
    transcripts looked like 50 MB and started worker processes to read it."""
    if cursor is None:
        return stat.st_size
    if cursor.file_identity != f"{stat.st_dev}:{stat.st_ino}" or stat.st_size < cursor.byte_offset:
        return stat.st_size
    return stat.st_size - cursor.byte_offset


def _unchanged(known: tuple[Any, ...], stat: os.stat_result) -> bool:
    identity, size, mtime_ns = known
    return (
        identity == f"{stat.st_dev}:{stat.st_ino}"
        and size == stat.st_size
        and mtime_ns == stat.st_mtime_ns
    )
