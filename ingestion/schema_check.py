"""Make sure the canonical store is at the newest migration before a command uses it."""

from __future__ import annotations

from typing import Any

import psycopg

from schemas.migrations import HEAD_REVISION


def current_revision(conn: psycopg.Connection[Any]) -> str | None:
    exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


def ensure_schema(url: str, conninfo: str) -> None:
    """Apply pending migrations (idempotent; a no-op at head). A revision newer than this
    tally's raises `UnknownRevision`."""
    with psycopg.connect(conninfo) as conn:
        revision = current_revision(conn)
    if revision == HEAD_REVISION:
        return
    from schemas.migrations.runner import check_known, upgrade

    check_known(revision)
    upgrade(url)
