"""An upstream that is loaded whole is not read again while it is as it was when a load of it
last succeeded:

- a file (Pigeon's SQLite database): same identity, size and modification time, and the same
  for its write-ahead log, where Pigeon's commits land until a checkpoint copies them into
  the file;
- a database (Paperclip's): the same digest of every row the load reads, taken in the
  snapshot the load would read.

What the load also depended on (the reader's version, the schema's revision, the company
loaded into) is kept beside it and must match too. The state lives in `ingestion_cursors`
under the upstream's source name, the table that holds the transcripts' cursors: one row per
file or upstream company, replaced by each load that succeeds."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

# Files beside the database that hold committed data SQLite has not copied into it yet.
COMPANIONS = ("-wal",)
# A modification time this close to the moment it was read may be shared by a write that
# landed just after (the kernel's clock for file times is coarse), one that leaves the size
# as it was too: such a state is not remembered, so the next ingest reads the file again.
RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class FileState:
    identity: str  # device:inode
    size: int
    mtime_ns: int
    companions: dict[str, list[int] | None]  # suffix -> [size, mtime_ns], None when absent
    taken_at_ns: int = 0

    def recorded(self, context: dict[str, Any]) -> dict[str, Any]:
        return {"companions": self.companions, **context}

    @property
    def racy(self) -> bool:
        """Whether a write may have landed after it was taken without changing it."""
        times = [self.mtime_ns, *(c[1] for c in self.companions.values() if c is not None)]
        return max(times) > self.taken_at_ns - RACY_NS


def file_state(path: Path) -> FileState | None:
    """The file's state now, taken before it is read (what is committed during the read
    then counts as a change next time); None when it cannot be told."""
    taken_at = time.time_ns()
    try:
        stat = os.stat(path)
        companions: dict[str, list[int] | None] = {}
        for suffix in COMPANIONS:
            try:
                companion = os.stat(f"{path}{suffix}")
            except FileNotFoundError:
                companions[suffix] = None
                continue
            # an empty log holds nothing: opening a database in WAL mode, even to read it,
            # creates one, which must not count as a change
            has_data = companion.st_size > 0
            companions[suffix] = [companion.st_size, companion.st_mtime_ns] if has_data else None
    except OSError:
        return None
    return FileState(f"{stat.st_dev}:{stat.st_ino}", stat.st_size, stat.st_mtime_ns, companions,
                     taken_at)  # fmt: skip


def load_context(reader_version: int, company: str) -> dict[str, Any]:
    """What a load depended on besides the upstream: its reader's version, the canonical
    schema's revision and the tally company it loaded into."""
    from schemas.migrations import HEAD_REVISION

    return {"reader": reader_version, "schema": HEAD_REVISION, "company": company}


@dataclass(frozen=True)
class SnapshotState:
    """A database upstream's rows, as one digest (`PaperclipSnapshot.content_digest`)."""

    identity: str
    size: int = 0
    mtime_ns: int = 0

    def recorded(self, context: dict[str, Any]) -> dict[str, Any]:
        return dict(context)


LoadState = FileState | SnapshotState


@dataclass(frozen=True)
class EarlierLoad:
    run_id: int | None  # None once that run's row is gone


def loaded_as(conninfo: str, source: str, path: Path | str, state: LoadState,
              context: dict[str, Any]) -> EarlierLoad | None:  # fmt: skip
    """The last load of `path` (a file, or an upstream's key) that succeeded, when it saw it
    as `state` and with the same `context`; else None."""
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            """SELECT file_identity, file_size, file_mtime_ns, state, last_run_id
               FROM ingestion_cursors WHERE source = %s AND path = %s""",
            (source, str(path)),
        ).fetchone()
    if row is None:
        return None
    identity, size, mtime_ns, recorded, run_id = row
    same = (identity, size, mtime_ns) == (state.identity, state.size, state.mtime_ns)
    if same and recorded == state.recorded(context):
        return EarlierLoad(run_id)
    return None


def remember_load(conninfo: str, source: str, path: Path | str, state: LoadState,
                  context: dict[str, Any], run_id: int | None) -> None:  # fmt: skip
    """Record that the load of run `run_id` read `path` as `state`."""
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            """INSERT INTO ingestion_cursors (source, path, file_identity, file_size,
                   file_mtime_ns, byte_offset, head_fingerprint, state, last_run_id)
               VALUES (%(source)s, %(path)s, %(identity)s, %(size)s, %(mtime)s, %(size)s, '',
                       %(state)s, %(run)s)
               ON CONFLICT (source, path) DO UPDATE SET
                   file_identity = excluded.file_identity, file_size = excluded.file_size,
                   file_mtime_ns = excluded.file_mtime_ns, byte_offset = excluded.byte_offset,
                   state = excluded.state, last_run_id = excluded.last_run_id,
                   updated_at = now()""",
            {"source": source, "path": str(path), "identity": state.identity,
             "size": state.size, "mtime": state.mtime_ns,
             "state": Jsonb(state.recorded(context)), "run": run_id},
        )  # fmt: skip
