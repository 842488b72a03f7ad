"""Whether the warehouse still matches the canonical store: costs are read from the
warehouse, so a report run after an ingest that was not materialised would otherwise show
the old numbers without a word."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

from ingestion.settings import TallySettings
from ingestion.store import CanonicalStore
from ingestion.warehouse.base import Warehouse
from schemas.limits import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP
from schemas.warehouse import (
    ATTRIBUTION_DAILY,
    COST_DAILY,
    TOKEN_NAMES,
    USAGE_ATTRIBUTED,
    USAGE_PRICED,
)

if TYPE_CHECKING:
    import polars as pl


def day_span(days: list[date]) -> str:
    """Sorted days as a report names them: the day, or how many between the first and last."""
    first, last = days[0], days[-1]
    return f"{first}" if first == last else f"{len(days)} days between {first} and {last}"


BEHIND_THE_STORE = "the warehouse is behind the canonical store"
ROLLUP_BEHIND = "the warehouse's daily rollup (cost_daily) is behind its priced usage"


@dataclass(frozen=True)
class Staleness:
    days: list[date]  # days whose derived tables differ from what they derive from
    # what is out of date, with {span} for the days
    lead: str = BEHIND_THE_STORE + " on {span}: those costs are"
    # the canonical store's requests on each of those days, where known
    requests: dict[date, int] = field(default_factory=dict)
    behind: str = BEHIND_THE_STORE  # what a report that priced the days itself says

    def span(self) -> str:
        return day_span(self.days)

    def command(self) -> str:
        first, last = self.days[0], self.days[-1]
        if first == last:
            return f"tally materialize --partition {first}"
        return f"tally materialize --from {first} --to {last}"

    def advice(self) -> str:
        return f"{self.lead.format(span=self.span())} out of date until you run `{self.command()}`"

    def priced_live(self) -> str:
        """For a report that priced the stale days itself from the canonical store."""
        them = "it" if len(self.days) == 1 else "them"
        return (
            f"{self.behind} on {self.span()}: this report priced "
            f"{them} from the canonical store; `{self.command()}` stores {them}"
        )


def stale_days(
    store: CanonicalStore, warehouse: Warehouse, first: date, last: date, *, rollup: bool = False
) -> Staleness | None:
    """Days of [first, last] whose requests or tokens in `usage_priced` differ from the
    canonical store's (new or grown events not yet materialised, or events since deleted);
    with `rollup`, also those whose `cost_daily` differs from their `usage_priced` in
    requests or cost (a table emptied for a new revision of its definition, pricing
    re-materialised without the rollup, the rollup's run failed): a cost report read from
    `cost_daily` once showed such days as empty, without a word."""
    if last < first:
        return None
    stored = store.daily_totals(first, last + timedelta(days=1))
    frame = _priced_days(warehouse, first, last, rollup)
    priced = {row[0]: (int(row[1]), int(row[2])) for row in frame.iter_rows() if row[1]}
    days = sorted(
        day for day in stored.keys() | priced.keys() if stored.get(day) != priced.get(day)
    )
    unrolled = sorted(row[0] for row in frame.iter_rows() if row[3] and row[0] not in days)
    if not days and not unrolled:
        return None
    behind = BEHIND_THE_STORE if days else ROLLUP_BEHIND
    days = sorted({*days, *unrolled})
    return Staleness(days, lead=behind + " on {span}: those costs are",
                     requests={day: stored[day][0] for day in days if day in stored},
                     behind=behind)  # fmt: skip


def _priced_days(warehouse: Warehouse, first: date, last: date, rollup: bool) -> pl.DataFrame:
    """`usage_priced`'s requests and tokens by day, and whether `cost_daily` (with `rollup`)
    differs from it on the day."""
    tokens = " + ".join(TOKEN_NAMES)
    warehouse.ensure_table(USAGE_PRICED)
    # a day of unpriced requests alone sums to NULL here and to 0 in the rollup
    cost = ", coalesce(sum(cost_usd), 0) AS cost_usd" if rollup else ""
    priced = f"""SELECT day, count(*) AS requests, CAST(sum({tokens}) AS BIGINT) AS tokens{cost}
                 FROM usage_priced WHERE day >= $first AND day <= $last GROUP BY day"""
    bounds = {"first": first, "last": last}
    if not rollup:
        return warehouse.query(f"SELECT *, false AS unrolled FROM ({priced})", bounds)
    warehouse.ensure_table(COST_DAILY)
    return warehouse.query(
        f"""SELECT coalesce(p.day, r.day) AS day, p.requests, p.tokens,
                   (p.requests IS DISTINCT FROM r.requests
                    OR p.cost_usd IS DISTINCT FROM r.cost_usd) AS unrolled
            FROM ({priced}) p
            FULL JOIN (SELECT day, CAST(sum(requests) AS BIGINT) AS requests,
                              coalesce(sum(cost_usd), 0) AS cost_usd
                       FROM cost_daily WHERE day >= $first AND day <= $last GROUP BY day) r
              ON p.day = r.day""",
        bounds,
    )


def attribution_lag_days(
    warehouse: Warehouse, first: date, last: date, engine_version: str | None = None
) -> list[date]:
    """Days of [first, last] whose `usage_attributed` no longer matches `usage_priced` (its
    input) in requests or cost, or whose `attribution_daily` no longer matches
    `usage_attributed`: pricing re-materialised without the attribution (`--select
    group:pricing`, a price override), the attribution's or its rollup's run failed, a table
    emptied for a new revision of its definition; with `engine_version`, also days
    attributed by another version of the engine."""
    if last < first:
        return []
    for table in (USAGE_PRICED, USAGE_ATTRIBUTED, ATTRIBUTION_DAILY):
        warehouse.ensure_table(table)
    # a day of unpriced requests alone sums to NULL per request and to 0 in a rollup
    daily = """SELECT day, {count} AS requests, coalesce(sum(cost_usd), 0) AS cost_usd,
                      coalesce(sum(computed_cost_usd), 0) AS computed_cost_usd
               FROM {table} WHERE day >= $first AND day <= $last GROUP BY day"""
    priced = daily.format(table="usage_priced", count="count(*)")
    attributed = daily.format(table="usage_attributed", count="count(*)")
    rolled = daily.format(table="attribution_daily", count="CAST(sum(requests) AS BIGINT)")
    frame = warehouse.query(
        f"""SELECT coalesce(p.day, a.day, d.day) AS day
            FROM ({priced}) p
            FULL JOIN ({attributed}) a ON p.day = a.day
            FULL JOIN ({rolled}) d ON coalesce(p.day, a.day) = d.day
            WHERE p.requests IS DISTINCT FROM a.requests
               OR p.cost_usd IS DISTINCT FROM a.cost_usd
               OR p.computed_cost_usd IS DISTINCT FROM a.computed_cost_usd
               OR a.requests IS DISTINCT FROM d.requests
               OR a.cost_usd IS DISTINCT FROM d.cost_usd
               OR a.computed_cost_usd IS DISTINCT FROM d.computed_cost_usd
            ORDER BY 1""",
        {"first": first, "last": last},
    )
    days = frame.get_column("day").to_list()
    if engine_version is not None:
        older = warehouse.query(
            """SELECT DISTINCT day FROM usage_attributed
               WHERE day >= $first AND day <= $last AND engine_version <> $version""",
            {"first": first, "last": last, "version": engine_version},
        )
        days = sorted({*days, *older.get_column("day").to_list()})
    return days


def stale_attribution_days(
    settings: TallySettings,
    store: CanonicalStore,
    warehouse: Warehouse,
    since: date | None = None,
    until: date | None = None,
    engine_version: str | None = None,
    *,
    rollup: bool = False,
) -> Staleness | None:
    """Days of the window, within the partitions, whose attribution is out of date: its
    priced usage is behind the store, the attribution is behind the priced usage, or (with
    `engine_version`) another version of the engine made it; with `rollup`, also days whose
    daily cost rollup is behind their priced usage (every derived table, for the catch-up)."""
    first, last = _within_partitions(settings, since, until)
    behind = stale_days(store, warehouse, first, last, rollup=rollup)
    lagging = attribution_lag_days(warehouse, first, last, engine_version)
    days = sorted({*(behind.days if behind else []), *lagging})
    if not days:
        return None
    return Staleness(days, lead="the attributions in the warehouse on {span} are")


def stale_partition_days(
    settings: TallySettings,
    store: CanonicalStore,
    warehouse: Warehouse,
    since: date | None = None,
    until: date | None = None,
) -> Staleness | None:
    """`stale_days` over [since, until] clipped to the daily partitions (days outside them
    are never materialised, so they cannot be behind), the daily rollup included."""
    return stale_days(store, warehouse, *_within_partitions(settings, since, until), rollup=True)


def stale_report_days(
    settings: TallySettings,
    store: CanonicalStore,
    warehouse: Warehouse,
    since: date | None,
    until: date | None,
    *,
    attribution: bool,
    engine_version: str | None = None,
) -> Staleness | None:
    """What a cost report over [since, until] warns of: the days whose costs (with
    `attribution`, whose attributions, by `engine_version` if given) the warehouse has not
    caught up with. The CLI's reports and the API's cost reads both ask this."""
    if attribution:
        return stale_attribution_days(settings, store, warehouse, since, until, engine_version)
    return stale_partition_days(settings, store, warehouse, since, until)


@dataclass(frozen=True)
class OutsidePartitions:
    """Usage of a report's window on days no partition holds, which the warehouse therefore
    never has: before TALLY_PARTITIONS_START, or after today (a clock set ahead)."""

    days: list[date]
    requests: int
    first_partition: date
    last_partition: date

    def advice(self) -> str:
        causes = []
        if self.days[0] < self.first_partition:
            causes.append("days before TALLY_PARTITIONS_START are never materialised")
        if self.days[-1] > self.last_partition:
            causes.append("a day after today comes from a clock set ahead")
        requests = "1 request" if self.requests == 1 else f"{self.requests:,} requests"
        return (
            f"this report leaves out {requests} on {day_span(self.days)}, outside the daily "
            "partitions "
            f"({self.first_partition} to {self.last_partition}, today in UTC): "
            f"{'; '.join(causes)}; `tally report usage` lists them"
        )


def usage_outside_partitions(
    settings: TallySettings, store: CanonicalStore, since: date | None, until: date | None
) -> OutsidePartitions | None:
    """Requests of [since, until] on days outside the daily partitions, from the per-day
    totals: a cost report would leave them out without a word."""
    first, last = settings.partition_bounds()
    start = max(since or EARLIEST_TIMESTAMP.date(), EARLIEST_TIMESTAMP.date())
    # `until` may be 9999-12-31, which has no day after it
    end = min(until or date.max, LATEST_TIMESTAMP.date() - timedelta(days=1)) + timedelta(days=1)
    if first <= start and end <= last + timedelta(days=1):
        return None  # the window lies within the partitions
    totals = store.daily_totals(start, end, excluding=(first, last))
    days = sorted(day for day, (requests, _) in totals.items() if requests)
    if not days:
        return None
    return OutsidePartitions(days, sum(totals[day][0] for day in days), first, last)


def _within_partitions(
    settings: TallySettings, since: date | None, until: date | None
) -> tuple[date, date]:
    first, last = settings.partition_bounds()
    return max(first, since or first), min(last, until or last)
