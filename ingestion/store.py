"""The canonical store's connection: one place decides which PostgreSQL tally talks to."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from ingestion.postgres.embedded import EmbeddedPostgres
from ingestion.settings import TallySettings, get_settings

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    import polars as pl
    import psycopg

    # where a connection comes from: a pool's `connection`, which gives it back afterwards
    ConnectionSource = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]

    from ingestion.extract_work import AttributionInputs


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


class CanonicalStore:
    """The canonical store as assets and the API see it: reads through Arrow; the per-day
    totals through psycopg, on a connection of `connection` (the API's pool) when given,
    else a new one."""

    def __init__(self, url: str, connection: ConnectionSource | None = None) -> None:
        self.url = url
        self.conninfo = psycopg_conninfo(url)
        self.connection = connection

    def usage_window(self, start: date, end: date) -> pl.DataFrame:
        from ingestion.extract import usage_window

        return usage_window(self.conninfo, start, end)

    def usage_window_with_totals(
        self, start: date, end: date
    ) -> tuple[pl.DataFrame, dict[str, int]]:
        """The window's events and the store's own totals of them (requests and each token
        column, which the pricing check reconciles), read in one snapshot."""
        from ingestion.extract import usage_window_with_totals

        return usage_window_with_totals(self.conninfo, start, end)

    def requests_stored_twice(self, start: date, end: date) -> pl.DataFrame:
        from ingestion.extract import requests_stored_twice

        return requests_stored_twice(self.conninfo, start, end)

    def usage_days(self) -> list[date]:
        from ingestion.extract import usage_days

        return usage_days(self.conninfo)

    def attribution_inputs(self, start: date, end: date, touch_window: timedelta,
                           commit_window: timedelta) -> AttributionInputs:  # fmt: skip
        from ingestion.extract_work import attribution_inputs

        return attribution_inputs(self.conninfo, start, end, touch_window, commit_window)

    def issues(self) -> pl.DataFrame:
        from ingestion.extract_work import issues

        return issues(self.conninfo)

    def price_overrides(self) -> pl.DataFrame:
        from ingestion.extract import price_overrides

        return price_overrides(self.conninfo)

    def daily_totals(
        self, start: date, end: date, *, excluding: tuple[date, date] | None = None
    ) -> dict[date, tuple[int, int]]:
        """Requests and tokens (all categories) of each UTC day in [start, end), as stored;
        `excluding` leaves out the days from its first to its last, inclusive."""
        from schemas.warehouse import TOKEN_NAMES as columns

        tokens = " + ".join(f"sum({c})" for c in columns)
        rows = self._counted_totals(f"sum(requests)::bigint, ({tokens})::bigint", start, end,
                                    by_day=True, excluding=excluding)  # fmt: skip
        return {day: (int(requests), int(total)) for day, requests, total in rows}

    def _counted_totals(
        self,
        select: str,
        start: date,
        end: date,
        *,
        by_day: bool = False,
        excluding: tuple[date, date] | None = None,
    ) -> list[tuple[Any, ...]]:
        """`select` over the UTC days [start, end) of the usage that counts
        (`schemas.usage_rules.counted_usage_by_day`)."""
        import psycopg

        from schemas.usage_rules import counted_usage_by_day

        opened = self.connection() if self.connection else psycopg.connect(self.conninfo)
        with opened as conn:
            return conn.execute(
                f"""SELECT {"day, " if by_day else ""}{select} FROM (
                      {counted_usage_by_day("%(start)s", "%(end)s")}
                    ) AS usage
                    {"WHERE day NOT BETWEEN %(skip_first)s AND %(skip_last)s" if excluding else ""}
                    {"GROUP BY day HAVING sum(requests) <> 0" if by_day else ""}""",
                {
                    "start": start,
                    "end": end,
                    "skip_first": excluding and excluding[0],
                    "skip_last": excluding and excluding[1],
                },
            ).fetchall()
