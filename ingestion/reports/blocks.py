"""5-hour billing blocks, as ccusage computes them (reference/agent-logs.md §4.5): a block
starts at its first request's time floored to the hour and lasts five hours; a request more
than five hours after the block's start or after the previous request opens a new block.
The active block gets a burn rate and a projection to its end."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl

BLOCK = timedelta(hours=5)
HOUR_US = 3_600_000_000
BLOCK_US = 5 * HOUR_US


@dataclass
class Block:
    start: datetime
    first_at: datetime
    last_at: datetime
    requests: int = 0
    tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    models: set[str] = field(default_factory=set)

    @property
    def end(self) -> datetime:
        return self.start + BLOCK

    def as_row(self, now: datetime) -> dict[str, Any]:
        active = self.start <= now < self.end
        row: dict[str, Any] = {
            "block_start": self.start.isoformat().replace("+00:00", "Z"),
            "block_end": self.end.isoformat().replace("+00:00", "Z"),
            "active": active,
            "requests": self.requests,
            "tokens": self.tokens,
            "cost_usd": self.cost_usd,
            "models": ", ".join(sorted(self.models)),
            "first_at": self.first_at.isoformat().replace("+00:00", "Z"),
            "last_at": self.last_at.isoformat().replace("+00:00", "Z"),
            "cost_per_hour": None,
            "projected_cost_usd": None,
        }
        if active:
            elapsed = max((now - self.first_at).total_seconds() / 3600, 1 / 60)
            rate = self.cost_usd / Decimal(str(round(elapsed, 6)))
            remaining = Decimal(str(round((self.end - now).total_seconds() / 3600, 6)))
            row["cost_per_hour"] = rate.quantize(Decimal("0.000001"))
            row["projected_cost_usd"] = (self.cost_usd + rate * remaining).quantize(
                Decimal("0.000001")
            )
        return row


def billing_blocks(events: pl.DataFrame) -> list[Block]:
    """Blocks of `events` (occurred_at, cost, tokens, model; in time order). Found block by
    block, not request by request: a block holds every request up to five hours after its
    start (which also bounds any gap inside it), so each block's end is one binary search, and
    the sums are one vectorised group-by (10 million requests make a few thousand blocks)."""
    if events.is_empty():
        return []
    times = events["occurred_at"].dt.epoch("us").to_numpy()
    firsts: list[int] = []
    index = 0
    while index < len(times):
        firsts.append(index)
        start = times[index] - times[index] % HOUR_US
        index = int(np.searchsorted(times, start + BLOCK_US, side="right"))
    sizes = np.diff(np.append(firsts, len(times)))
    sums = (
        events.with_columns(pl.Series("block", np.repeat(np.arange(len(firsts)), sizes)))
        .group_by("block", maintain_order=True)
        .agg(
            pl.col("occurred_at").first().alias("first_at"),
            pl.col("occurred_at").last().alias("last_at"),
            pl.len().alias("requests"),
            pl.col("tokens").sum(),
            pl.col("cost").sum(),
            pl.col("model").unique(),
        )
    )
    return [
        Block(
            start=row["first_at"].replace(minute=0, second=0, microsecond=0),
            first_at=row["first_at"],
            last_at=row["last_at"],
            requests=row["requests"],
            tokens=int(row["tokens"]),
            cost_usd=Decimal(row["cost"]),
            models=set(row["model"]),
        )
        for row in sums.iter_rows(named=True)
    ]
