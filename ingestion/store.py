"""The canonical store's connection: one place decides which PostgreSQL tally talks to."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine, create_engine

from ingestion.postgres.embedded import EmbeddedPostgres
from ingestion.settings import TallySettings, get_settings


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
    """A libpq conninfo for a SQLAlchemy URL (psycopg does not understand `+driver`)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@lru_cache(maxsize=8)
def _engine_for(url: str) -> Engine:
    return create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=4)


def get_engine(url: str | None = None) -> Engine:
    return _engine_for(url or database_url())
