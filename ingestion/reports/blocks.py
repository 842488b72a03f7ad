"""5-hour billing blocks, as ccusage computes them (reference/agent-logs.md §4.5): a block
starts at its first request's time floored to the hour and lasts five hours; a request more
than five hours after the block's start or after the previous request opens a new block.
The active block gets a burn rate and a projection to its end."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

BLOCK = timedelta(hours=5)


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


def billing_blocks(events: Iterable[tuple[datetime, Decimal, int, str]]) -> list[Block]:
    blocks: list[Block] = []
    current: Block | None = None
    for at, cost, tokens, model in events:
        if current is None or at - current.start > BLOCK or at - current.last_at > BLOCK:
            current = Block(start=at.replace(minute=0, second=0, microsecond=0), first_at=at,
                            last_at=at)  # fmt: skip
            blocks.append(current)
        current.last_at = at
        current.requests += 1
        current.tokens += int(tokens)
        current.cost_usd += Decimal(cost)
        current.models.add(model)
    return blocks
