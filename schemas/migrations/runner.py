"""Run and inspect migrations from code (used by `tally db` and the tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool
from sqlalchemy.exc import DBAPIError

from schemas.migrations import UnknownRevision

MIGRATIONS_DIR = Path(__file__).parent


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@contextmanager
def driver_errors() -> Iterator[None]:
    """Raise the driver's own error, which the commands and the API already turn into one
    clear line (an unreachable server, a refused login), instead of SQLAlchemy's wrapper."""
    try:
        yield
    except DBAPIError as error:
        if isinstance(error.orig, psycopg.Error):
            raise error.orig from None
        raise


def check_known(revision: str | None) -> None:
    """Refuse a revision no migration here names, with what to do about it (Alembic's own
    error, a traceback, followed every command)."""
    if revision is None:
        return
    script = ScriptDirectory.from_config(alembic_config("postgresql://"))
    if revision not in {known.revision for known in script.walk_revisions()}:
        raise UnknownRevision(
            f"the database is at schema revision {revision!r}, which this tally (head "
            f"{script.get_current_head()}) does not know: a newer tally has migrated it. "
            "Run that version, or point TALLY_DATABASE_URL at another database"
        )


def upgrade(url: str, revision: str = "head") -> None:
    check_known(current_revision(url))
    with driver_errors():
        command.upgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()


def current_revision(url: str) -> str | None:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with driver_errors(), engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
