"""Costs of the days the warehouse has not caught up with, computed from the canonical store
by the same transforms the `usage_priced` and `cost_daily` assets run, so that a report shows
today's numbers without waiting for a materialisation. Nothing is written: the warehouse
stays what Dagster materialised, with its lineage and checks."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

import polars as pl

from assets.costs.transform import cost_daily
from assets.pricing.catalog import PriceOverride, price_table, stored_overrides
from assets.pricing.transform import price_keys, price_usage
from ingestion.reports.costs import LiveDays
from ingestion.store import CanonicalStore
from schemas.warehouse import COST_DAILY, USAGE_PRICED, WarehouseTable

# Days priced in one go: what a report holds at once when it keeps only the daily rollup.
RANGE_DAYS = 7


def day_ranges(days: Iterable[date], max_days: int = RANGE_DAYS) -> list[tuple[date, date]]:
    """Runs of consecutive days as [start, end) windows of at most `max_days`, each read from
    the store in one query."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and ranges[-1][1] == day and (day - ranges[-1][0]).days < max_days:
            ranges[-1] = (ranges[-1][0], day + timedelta(days=1))
        else:
            ranges.append((day, day + timedelta(days=1)))
    return ranges


def live_days(
    store: CanonicalStore,
    days: Iterable[date],
    subscription_sources: frozenset[str],
    *,
    keep_priced: bool = True,
    overrides: list[PriceOverride] | None = None,
) -> LiveDays:
    """`cost_daily` rows of `days` (and, with `keep_priced`, their `usage_priced` rows),
    priced now at the prices (and overrides) of each event's day: what materialising those
    partitions would write. Without `keep_priced` only a week's events are held at once.
    `overrides`, when the caller read them already (`stored_overrides`), else read here."""
    ranges = day_ranges(days)
    if overrides is None:
        overrides = stored_overrides(store) if ranges else []
    priced_parts, daily_parts = [], []
    for start, end in ranges:
        usage = store.usage_window(start, end)
        priced = price_usage(usage, price_table(price_keys(usage), overrides))
        priced = priced.select(USAGE_PRICED.column_names)
        if keep_priced:
            priced_parts.append(priced)
        daily_parts.append(cost_daily(priced, subscription_sources))
    return LiveDays(
        days=tuple(sorted(set(days))),
        usage_priced=_concat(priced_parts, USAGE_PRICED) if keep_priced else None,
        cost_daily=_concat(daily_parts, COST_DAILY),
    )


def _concat(parts: list[pl.DataFrame], table: WarehouseTable) -> pl.DataFrame:
    if not parts:
        return pl.DataFrame(schema=dict.fromkeys(table.column_names, pl.Null))
    return pl.concat(parts, how="vertical_relaxed")
