"""Bookkeeping of ingestion: one row per run, a cursor per file, and every rejected record."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from schemas.canonical.base import (
    Base,
    BigId,
    CreatedAt,
    Json,
    OptionalTimestamp,
    Timestamp,
    Tokens,
)


class IngestionRun(Base):
    __tablename__ = "ingestion_runs"
    __table_args__ = (
        # each run first marks the runs whose process is gone as interrupted: a scan of every
        # run ever (the sensor starts one a minute: 600,000 a year, 0.1 s a run) without it
        Index("ix_ingestion_runs_running", "id", postgresql_where=text("status = 'running'")),
    )

    id: Mapped[BigId]
    source: Mapped[str]
    status: Mapped[str] = mapped_column(server_default="running")
    started_at: Mapped[Timestamp]
    finished_at: Mapped[OptionalTimestamp]
    files_seen: Mapped[Tokens]
    files_read: Mapped[Tokens]
    bytes_read: Mapped[Tokens]
    lines_read: Mapped[Tokens]
    events_new: Mapped[Tokens]
    events_merged: Mapped[Tokens]
    tool_calls_seen: Mapped[Tokens]
    sessions_seen: Mapped[Tokens]
    rejects: Mapped[Tokens]
    error: Mapped[str | None]
    arguments: Mapped[Json]
    host: Mapped[str | None]
    pid: Mapped[int | None]


class IngestionCursor(Base):
    """How far a file has been read. `byte_offset` is the end of the last complete line;
    `head_fingerprint` (a hash of the first bytes) detects a replaced file and
    `tail_fingerprint` (of the last bytes read; NULL before revision 0008) one rewritten in
    place; `state` holds what a parser must carry between reads (e.g. Codex cumulative
    totals)."""

    __tablename__ = "ingestion_cursors"
    __table_args__ = (UniqueConstraint("source", "path"),)

    id: Mapped[BigId]
    source: Mapped[str]
    path: Mapped[str]
    file_identity: Mapped[str]  # device:inode
    file_size: Mapped[int]
    file_mtime_ns: Mapped[int]
    byte_offset: Mapped[int]
    head_fingerprint: Mapped[str]
    tail_fingerprint: Mapped[str | None]
    state: Mapped[Json]
    last_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("ingestion_runs.id", ondelete="SET NULL")
    )
    updated_at: Mapped[CreatedAt]


class IngestionReject(Base):
    """A record that could not be loaded: where it was, why, and the first bytes of it."""

    __tablename__ = "ingestion_rejects"
    __table_args__ = (
        UniqueConstraint("source", "location", "position", "fingerprint"),
        Index("ix_ingestion_rejects_created_at", "created_at"),
    )

    id: Mapped[BigId]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingestion_runs.id", ondelete="SET NULL"))
    source: Mapped[str]
    location: Mapped[str]  # file path, endpoint or upstream table
    position: Mapped[str]  # byte offset, line number, record index or upstream id
    reason: Mapped[str]
    excerpt: Mapped[str]
    fingerprint: Mapped[str]  # hash of the record, so a re-read does not duplicate it
    created_at: Mapped[CreatedAt]
