"""The canonical store's connection: one place decides which PostgreSQL tally talks to."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from ingestion.postgres.embedded import EmbeddedPostgres
from ingestion.settings import TallySettings, get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine


class StoreUnavailable(RuntimeError):
    """The canonical store cannot be reached; commands report this and exit non-zero."""


def embedded_server(settings: TallySettings | None = None) -> EmbeddedPostgres:
    settings = settings or get_settings()
    return EmbeddedPostgres(settings.resolved_data_dir / "postgres")


def database_url(settings: TallySettings | None = None) -> str:
    """TALLY_DATABASE_URL, or the embedded server's URL (starting it if needed)."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    return embedded_server(settings).ensure_running()


def psycopg_conninfo(url: str) -> str:
    """A libpq URL for a SQLAlchemy URL: libpq does not understand `+driver` in the scheme.
    (Plain string work: importing SQLAlchemy would double a quick command's start-up.)"""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    return f"{scheme.split('+', 1)[0]}://{rest}"


@lru_cache(maxsize=8)
def _engine_for(url: str) -> Engine:
    from sqlalchemy import create_engine

    return create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=4)


def get_engine(url: str | None = None) -> Engine:
    return _engine_for(url or database_url())
