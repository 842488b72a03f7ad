"""Whether the warehouse still matches the canonical store: costs are read from the
warehouse, so a report run after an ingest that was not materialised would otherwise show
the old numbers without a word."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from ingestion.settings import TallySettings
from ingestion.store import CanonicalStore
from ingestion.warehouse.base import Warehouse
from schemas.warehouse import TOKEN_NAMES, USAGE_PRICED


@dataclass(frozen=True)
class Staleness:
    days: list[date]  # days whose priced usage differs from the stored usage

    def advice(self) -> str:
        first, last = self.days[0], self.days[-1]
        span = f"{first}" if first == last else f"{len(self.days)} days between {first} and {last}"
        command = (
            f"tally materialize --partition {first}"
            if first == last
            else f"tally materialize --from {first} --to {last}"
        )
        return (
            f"the warehouse is behind the canonical store on {span}: those costs are out of "
            f"date until you run `{command}`"
        )


def stale_days(
    store: CanonicalStore, warehouse: Warehouse, first: date, last: date
) -> Staleness | None:
    """Days of [first, last] whose requests or tokens in `usage_priced` differ from the
    canonical store's (new or grown events not yet materialised, or events since deleted)."""
    if last < first:
        return None
    stored = store.daily_totals(first, last + timedelta(days=1))
    tokens = " + ".join(TOKEN_NAMES)
    warehouse.ensure_table(USAGE_PRICED)
    frame = warehouse.query(
        f"""SELECT day, count(*) AS requests, CAST(sum({tokens}) AS BIGINT) AS tokens
            FROM usage_priced WHERE day >= $first AND day <= $last GROUP BY day""",
        {"first": first, "last": last},
    )
    priced = {row[0]: (int(row[1]), int(row[2])) for row in frame.iter_rows()}
    days = sorted(
        day for day in stored.keys() | priced.keys() if stored.get(day) != priced.get(day)
    )
    return Staleness(days) if days else None


def stale_partition_days(
    settings: TallySettings,
    store: CanonicalStore,
    warehouse: Warehouse,
    since: date | None = None,
    until: date | None = None,
) -> Staleness | None:
    """`stale_days` over [since, until] clipped to the daily partitions: days outside them
    are never materialised, so they cannot be behind."""
    first, last = settings.partition_bounds()
    return stale_days(store, warehouse, max(first, since or first), min(last, until or last))
