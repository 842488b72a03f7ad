"""What every CLI command needs: settings, the store's URL, and clean failures."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from ingestion.messages import first_line
from ingestion.settings import TallySettings, get_settings

# Messages are not hard-wrapped: a path or a command broken over two lines cannot be copied.
err = Console(stderr=True, soft_wrap=True)
# Progress and summaries, on stderr. Written to a log (make run | tee, cron, CI), rich's
# 80-column default cut the ingest summary's names ("claude_ / code", "unchan…").
LOG_WIDTH = 160


def progress_console() -> Console:
    return Console(stderr=True, width=None if sys.stderr.isatty() else LOG_WIDTH)


class CommandFailed(Exception):
    """The command could not do its job; the message says why."""


@dataclass(frozen=True)
class StoreContext:
    settings: TallySettings
    url: str
    conninfo: str


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code)


def file_in_the_way(error: OSError, path: str | Path) -> Path | None:
    """The file standing where `path`, or a directory above it, must be a directory, when
    that is what `error` is about: mkdir says only "File exists" or "Not a directory"."""
    if not isinstance(error, FileExistsError | NotADirectoryError):
        return None
    for candidate in (Path(path), *Path(path).parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


# What an operator can do when the server stopped a command, by SQLSTATE class. Running it
# again is safe: an ingest keeps the batches it committed and goes on from there, a
# materialisation replaces whole windows.
SERVER_TROUBLE_REMEDIES = {
    "53": "the server ran out of disk, memory or connections: free some and run it again",
    "57": "the server was shut down or restarted: run it again once it is up",
}


@contextmanager
def failures_reported() -> Iterator[None]:
    """Turn the expected failures into one clear line and a non-zero exit."""
    import psycopg
    from pydantic import ValidationError

    from ingestion.postgres.binaries import PostgresBinariesNotFound
    from ingestion.postgres.embedded import EmbeddedPostgresError
    from ingestion.warehouse.errors import WarehouseUnavailable
    from schemas.migrations import UnknownRevision

    try:
        yield
    except (
        CommandFailed,
        EmbeddedPostgresError,
        PostgresBinariesNotFound,
        UnknownRevision,
        WarehouseUnavailable,
    ) as error:
        raise fail(str(error)) from None
    except ValidationError as error:
        problems = "; ".join(
            f"TALLY_{str(e['loc'][0]).upper()}: {e['msg']}" for e in error.errors()
        )
        raise fail(f"invalid setting: {problems}") from None
    except psycopg.OperationalError as error:
        if error.sqlstate is None:  # no server answered: the connection itself failed
            raise fail(f"database unreachable: {first_line(error, repr(error))}") from None
        # the server answered, and could not do it: a full disk, a limit, a shutdown
        remedy = SERVER_TROUBLE_REMEDIES.get(error.sqlstate[:2])
        raise fail(
            f"the database could not do it: {first_line(error, repr(error))} "
            f"(SQLSTATE {error.sqlstate}){f'; {remedy}' if remedy else ''}"
        ) from None
    except psycopg.errors.InsufficientPrivilege as error:
        raise fail(
            f"the database refused: {first_line(error, repr(error))} (TALLY_DATABASE_URL's "
            "role must own tally's tables: it creates and migrates them)"
        ) from None
    except OSError as error:  # the file system said no: which file, and why
        path = str(error.filename or "")
        blocker = file_in_the_way(error, path) if path else None
        if blocker is not None:
            raise fail(f"{blocker} is not a directory") from None
        raise fail(f"{error.strerror or error}{f' ({path})' if path else ''}") from None
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


def store(*, migrate: bool = True) -> StoreContext:
    from ingestion.schema_check import ensure_schema
    from ingestion.store import database_url, psycopg_conninfo

    settings = get_settings()
    url = database_url(settings)
    conninfo = psycopg_conninfo(url)
    if migrate:
        ensure_schema(url, conninfo)
    return StoreContext(settings=settings, url=url, conninfo=conninfo)
