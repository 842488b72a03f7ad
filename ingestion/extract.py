"""Read windows of the canonical store as polars frames, through Arrow (ADBC's binary
protocol): no row-by-row Python on the way to the warehouse."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, date, datetime, time
from typing import Any

import adbc_driver_manager as adbc
import adbc_driver_postgresql
import polars as pl

from ingestion.posted_copies import copies_sql
from ingestion.session_labels import AGENT_LABEL, PROJECT_LABEL, SESSION_LABEL_JOINS
from schemas.usage_rules import COUNTED_USAGE, counted_usage_by_day
from schemas.warehouse import TOKEN_NAMES

MONEY = pl.Decimal(38, 12)

USAGE_WINDOW = f"""
SELECT e.id AS event_id, e.company_id, e.source, s.session_key,
       r.session_key AS root_session_key, {PROJECT_LABEL} AS project, {AGENT_LABEL} AS agent,
       e.occurred_at, e.provider, e.model, e.input_tokens, e.output_tokens,
       e.reasoning_tokens, e.cache_read_tokens, e.cache_write_5m_tokens,
       e.cache_write_1h_tokens, e.web_search_requests, e.service_tier, e.speed,
       e.reported_cost_usd::text AS reported_cost_usd
FROM token_usage_events AS e{SESSION_LABEL_JOINS}
WHERE e.occurred_at >= $1::timestamptz AND e.occurred_at < $2::timestamptz
  AND {COUNTED_USAGE}
"""

# Requests of the window posted over the API that another source holds too (counted twice),
# by pair of sources (ingestion/posted_copies.py finds them; `tally db drop-posted-copies`
# drops them).
TWICE_STORED = f"""
SELECT posted_as, kept_as AS also_as, count(*) AS requests, sum(tokens)::bigint AS tokens
FROM ({copies_sql("a.occurred_at >= $1::timestamptz AND a.occurred_at < $2::timestamptz")}) AS c
GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2
"""

# The per-day totals the triggers keep (migration 0006), not a scan of every event; the
# per-session rollups they leave out are few and found through their partial index.
USAGE_DAYS = """
SELECT day::text AS day FROM (
    SELECT day FROM usage_day_deltas GROUP BY day HAVING sum(requests) <> 0
    UNION
    SELECT (occurred_at AT TIME ZONE 'UTC')::date FROM token_usage_events
    WHERE origin = 'session_rollup'
) AS days ORDER BY 1
"""

# The store's own totals of a window, to reconcile what was read with.
WINDOW_TOTALS = f"""
SELECT COALESCE(sum(requests), 0)::bigint AS requests,
       {", ".join(f"COALESCE(sum({c}), 0)::bigint AS {c}" for c in TOKEN_NAMES)}
FROM ({counted_usage_by_day("$1::date", "$2::date")}) AS usage
"""

PRICE_OVERRIDES = """
SELECT id, company_id, provider, model_pattern, effective_from, effective_to,
       input_per_mtok::text, output_per_mtok::text, cache_read_per_mtok::text,
       cache_write_5m_per_mtok::text, cache_write_1h_per_mtok::text,
       web_search_per_thousand::text
FROM price_overrides ORDER BY effective_from, id
"""


# Each process keeps one ADBC connection per database; ADBC connections start in autocommit
# mode, so no transaction stays open between queries. The driver is used through its low-level
# API, and its Arrow streams are handed to polars through the C stream interface, without
# pyarrow: the DB-API module imports pyarrow.dataset and with it pandas (0.4 s), and pyarrow
# alone costs about 0.2 s (numpy with it), which a short command such as `tally report costs`
# would pay on every run.
_connections: dict[str, tuple[adbc.AdbcDatabase, adbc.AdbcConnection]] = {}
# The driver resolves result types from its own table of PostgreSQL's built-in types instead
# of reading the server's catalogue when it connects (0.04-0.09 s here, and seconds on a
# server with many objects: apache/arrow-adbc#1755). The queries here return built-in types
# only: a composite or user-defined type would arrive as opaque bytes.
BUILTIN_TYPES = {"adbc.postgresql.type_resolver_mode": "builtin"}
_connections_lock = threading.Lock()


Query = tuple[str, tuple[Any, ...]]


def _arrow(conninfo: str, sql: str, params: tuple[Any, ...] = ()) -> pl.DataFrame:
    return _arrow_in_one_snapshot(conninfo, [(sql, params)])[0]


def _arrow_in_one_snapshot(conninfo: str, queries: list[Query]) -> list[pl.DataFrame]:
    """Each query's result. Several are read in one REPEATABLE READ transaction, so that
    they see the same committed rows whatever other sessions commit meanwhile."""
    with _connections_lock:
        while True:
            held = _connections.get(conninfo)
            kept = held is not None
            if held is None:
                database = adbc_driver_postgresql.connect(conninfo, db_kwargs=BUILTIN_TYPES)
                held = _connections[conninfo] = (database, adbc.AdbcConnection(database))
            try:
                if len(queries) == 1:
                    return [_execute(held[1], *queries[0])]
                return _in_one_transaction(held[1], queries)
            except adbc.Error:
                # a kept connection may have been closed by the server since: retry on a new one
                del _connections[conninfo]
                for handle in reversed(held):
                    with contextlib.suppress(adbc.Error):
                        handle.close()
                if not kept:
                    raise


def _in_one_transaction(
    connection: adbc.AdbcConnection, queries: list[Query]
) -> list[pl.DataFrame]:
    connection.set_options(**{"adbc.connection.autocommit": "false"})  # the driver BEGINs
    try:
        update = adbc.AdbcStatement(connection)
        try:  # before any query of the transaction, as PostgreSQL requires
            update.set_sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            update.execute_update()
        finally:
            update.close()
        results = [_execute(connection, sql, params) for sql, params in queries]
        connection.commit()
        return results
    except BaseException:
        with contextlib.suppress(adbc.Error):
            connection.rollback()
        raise
    finally:
        with contextlib.suppress(adbc.Error):
            connection.set_options(**{"adbc.connection.autocommit": "true"})


def _execute(connection: adbc.AdbcConnection, sql: str, params: tuple[Any, ...]) -> pl.DataFrame:
    statement = adbc.AdbcStatement(connection)
    try:
        statement.set_sql_query(sql)
        if params:
            row = pl.DataFrame({str(index): [value] for index, value in enumerate(params)})
            statement.bind_stream(row)
        stream, _ = statement.execute_query()
        return pl.DataFrame(stream)  # read to the end before the statement closes
    finally:
        statement.close()


def _utc(day: date) -> str:
    return datetime.combine(day, time(), tzinfo=UTC).isoformat()


def usage_window(conninfo: str, start: date, end: date) -> pl.DataFrame:
    """The usage events of the UTC days [start, end), with their session's context."""
    frame = _arrow(conninfo, USAGE_WINDOW, (_utc(start), _utc(end)))
    return frame.with_columns(
        pl.col("reported_cost_usd").cast(MONEY),
        pl.col("occurred_at").dt.date().alias("day"),
    )


def usage_window_with_totals(
    conninfo: str, start: date, end: date
) -> tuple[pl.DataFrame, dict[str, int]]:
    """`usage_window`, with the store's own totals of the window (requests and each token
    column, from the per-day totals the triggers keep), read in one snapshot: read apart,
    an ingest committing between the two (agents write over HTTP all day) made them
    disagree, and failed the reconciliation of a correct materialisation."""
    frame, totals = _arrow_in_one_snapshot(conninfo, [
        (USAGE_WINDOW, (_utc(start), _utc(end))),
        (WINDOW_TOTALS, (start.isoformat(), end.isoformat())),
    ])  # fmt: skip
    frame = frame.with_columns(
        pl.col("reported_cost_usd").cast(MONEY),
        pl.col("occurred_at").dt.date().alias("day"),
    )
    return frame, {name: int(value) for name, value in totals.row(0, named=True).items()}


def requests_stored_twice(conninfo: str, start: date, end: date) -> pl.DataFrame:
    """Posted requests of the UTC days [start, end) stored under another source too: by the
    source they were posted as and the other, with their number and tokens."""
    return _arrow(conninfo, TWICE_STORED, (_utc(start), _utc(end)))


def usage_days(conninfo: str) -> list[date]:
    frame = _arrow(conninfo, USAGE_DAYS)
    return [date.fromisoformat(day) for day in frame["day"]] if frame.height else []


def price_overrides(conninfo: str) -> pl.DataFrame:
    return _arrow(conninfo, PRICE_OVERRIDES)
