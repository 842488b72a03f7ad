"""Costs of the days the warehouse has not caught up with, computed from the canonical store
by the same transforms the `usage_priced` and `cost_daily` assets run, so that a report shows
today's numbers without waiting for a materialisation. Nothing is written: the warehouse
stays what Dagster materialised, with its lineage and checks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta

import polars as pl

from assets.costs.transform import cost_daily
from assets.pricing.catalog import PriceOverride, price_table, stored_overrides
from assets.pricing.transform import price_keys, price_usage
from assets.slices import consecutive_days, window_slices
from ingestion.reports.costs import LIVE_PRICED_COLUMNS, LiveDays
from ingestion.settings import get_settings
from ingestion.store import CanonicalStore
from schemas.warehouse import COST_DAILY, USAGE_PRICED, WarehouseTable

# Events a report prices live at once, at most (and no more than a materialisation slice):
# 2 million events behind, by range: 250,000 took 8.0 s and 1.1 GB, a million 7.3 s and 2.1 GB.
LIVE_RANGE_EVENTS = 250_000


def day_ranges(
    days: Iterable[date], rows_by_day: Mapping[date, int], max_rows: int
) -> list[tuple[date, date]]:
    """Runs of consecutive days as [start, end) windows, each read from the store in one
    query and holding at most `max_rows` events (a busier day is a window of its own), as a
    materialisation slices them (`window_slices`): a fixed week of days held a week of a
    busy company's events at once."""
    return [
        piece
        for start, end in consecutive_days(days)
        for piece in window_slices(start, end, rows_by_day, max_rows)
    ]


def live_days(
    store: CanonicalStore,
    days: Iterable[date],
    subscription_sources: frozenset[str],
    *,
    keep_priced: bool = True,
    overrides: list[PriceOverride] | None = None,
    requests_by_day: dict[date, int] | None = None,
) -> LiveDays:
    """`cost_daily` rows of `days` (and, with `keep_priced`, their `usage_priced` rows),
    priced now at the prices (and overrides) of each event's day: what materialising those
    partitions would write. Without `keep_priced` only one range's events are held at once
    (`day_ranges`: at most LIVE_RANGE_EVENTS of them, or TALLY_MATERIALIZE_SLICE_EVENTS if
    fewer).
    `overrides` and `requests_by_day` (the store's requests of each day), when the caller
    read them already (`stored_overrides`, the freshness check), else read here."""
    wanted = sorted(set(days))
    if requests_by_day is None and wanted:
        stored = store.daily_totals(wanted[0], wanted[-1] + timedelta(days=1))
        requests_by_day = {day: requests for day, (requests, _) in stored.items()}
    budget = min(LIVE_RANGE_EVENTS, get_settings().materialize_slice_events)
    ranges = day_ranges(wanted, requests_by_day or {}, budget)
    if overrides is None:
        overrides = stored_overrides(store) if ranges else []
    priced_parts, daily_parts = [], []
    for start, end in ranges:
        usage = store.usage_window(start, end)
        priced = price_usage(usage, price_table(price_keys(usage), overrides))
        priced = priced.select(USAGE_PRICED.column_names)
        if keep_priced:
            priced_parts.append(priced.select(LIVE_PRICED_COLUMNS))
        daily_parts.append(cost_daily(priced, subscription_sources))
    return LiveDays(
        days=tuple(wanted),
        usage_priced=_concat(priced_parts, USAGE_PRICED) if keep_priced else None,
        cost_daily=_concat(daily_parts, COST_DAILY),
    )


def _concat(parts: list[pl.DataFrame], table: WarehouseTable) -> pl.DataFrame:
    if not parts:
        return pl.DataFrame(schema=dict.fromkeys(table.column_names, pl.Null))
    return pl.concat(parts, how="vertical_relaxed")
