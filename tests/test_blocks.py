"""5-hour billing blocks, as ccusage defines them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ingestion.reports.blocks import billing_blocks

T = datetime(2026, 10, 3, 9, 40, tzinfo=UTC)


def event(minutes: float, cost: str = "1", tokens: int = 100, model: str = "m"):
    return (T + timedelta(minutes=minutes), Decimal(cost), tokens, model)


def test_blocks_start_on_the_hour_and_last_five_hours():
    # 09:40 and 10:40 fall in the block from 09:00; 14:35 is more than five hours after
    # 09:00, so it opens a block from 14:00, which 14:50 joins; 02:20 the next day is alone
    blocks = billing_blocks([event(0), event(60), event(295), event(310), event(1000)])
    assert [b.start.strftime("%d %H:%M") for b in blocks] == ["03 09:00", "03 14:00", "04 02:00"]
    assert [b.requests for b in blocks] == [2, 2, 1]
    assert blocks[0].cost_usd == Decimal(2)
    assert blocks[0].end == T.replace(minute=0) + timedelta(hours=5)


def test_a_gap_longer_than_five_hours_opens_a_new_block():
    blocks = billing_blocks([event(0), event(5 * 60 + 1)])
    assert len(blocks) == 2


def test_the_active_block_has_a_burn_rate_and_a_projection():
    (block,) = billing_blocks([event(0, "2"), event(60, "2")])
    now = T + timedelta(minutes=120)  # two hours after the first request, block ends at 14:00
    row = block.as_row(now)
    assert row["active"] is True
    assert row["cost_per_hour"] == Decimal("2.000000")  # $4 over 2 hours
    remaining_hours = Decimal(str(round((block.end - now).total_seconds() / 3600, 6)))
    assert row["projected_cost_usd"] == (Decimal(4) + 2 * remaining_hours).quantize(
        Decimal("0.000001")
    )
    finished = block.as_row(T + timedelta(hours=9))
    assert finished["active"] is False and finished["projected_cost_usd"] is None
