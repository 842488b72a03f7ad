"""5-hour billing blocks, as ccusage defines them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import duckdb
import polars as pl
import pytest

from ingestion.reports.blocks import BLOCK, Block, billing_blocks
from ingestion.warehouse.base import open_warehouse
from schemas.warehouse import USAGE_PRICED

T = datetime(2026, 10, 3, 9, 40, tzinfo=UTC)
EVENT_SCHEMA = {"occurred_at": pl.Datetime("us", "UTC"), "cost": pl.Decimal(38, 12),
                "tokens": pl.Int64, "model": pl.String, "source": pl.String}  # fmt: skip
Event = tuple[datetime, Decimal, int, str, str]


def event(minutes: float, cost: str = "1", tokens: int = 100, model: str = "m",
          source: str = "claude_code") -> Event:  # fmt: skip
    return (T + timedelta(minutes=minutes), Decimal(cost), tokens, model, source)


def frame(events: list[Event]) -> pl.DataFrame:
    return pl.DataFrame(events, schema=EVENT_SCHEMA, orient="row")


@pytest.fixture
def warehouse(tmp_path):
    return open_warehouse(f"duckdb://{tmp_path / 'warehouse.duckdb'}")


def blocks_in(warehouse, events: list[Event], batch_rows: int = 50_000) -> list[Block]:
    """The blocks of `events` stored as priced usage (their tokens as uncached input)."""
    warehouse.ensure_table(USAGE_PRICED)
    rows = frame(events).select(
        pl.col("occurred_at").dt.date().alias("day"),
        "occurred_at",
        "model",
        "source",
        pl.col("cost").alias("cost_usd"),
        pl.col("tokens").alias("input_tokens"),
        *(pl.lit(0).alias(c) for c in ("output_tokens", "cache_read_tokens",
                                       "cache_write_5m_tokens", "cache_write_1h_tokens")),
    )  # fmt: skip
    with duckdb.connect(str(warehouse.path)) as connection:
        connection.register("events", rows)
        connection.execute("DELETE FROM usage_priced")
        connection.execute("INSERT INTO usage_priced BY NAME SELECT * FROM events")
    return billing_blocks(warehouse, "auto", None, None, batch_rows=batch_rows)


@pytest.fixture
def blocks_of(warehouse):
    return lambda *events: blocks_in(warehouse, list(events))


def test_blocks_start_on_the_hour_and_last_five_hours(blocks_of):
    # 09:40 and 10:40 fall in the block from 09:00; 14:35 is more than five hours after
    # 09:00, so it opens a block from 14:00, which 14:50 joins; 02:20 the next day is alone
    blocks = blocks_of(event(0), event(60), event(295), event(310), event(1000))
    assert [b.start.strftime("%d %H:%M") for b in blocks] == ["03 09:00", "03 14:00", "04 02:00"]
    assert [b.requests for b in blocks] == [2, 2, 1]
    assert blocks[0].cost_usd == Decimal(2)
    assert blocks[0].end == T.replace(minute=0) + timedelta(hours=5)


def test_a_request_exactly_five_hours_after_the_start_still_belongs_to_the_block(blocks_of):
    blocks = blocks_of(event(-40), event(5 * 60 - 40), event(5 * 60 - 40 + 1 / 60_000))
    assert [b.requests for b in blocks] == [2, 1]
    assert blocks[1].start == T.replace(minute=0) + timedelta(hours=5)


def test_a_gap_longer_than_five_hours_opens_a_new_block(blocks_of):
    blocks = blocks_of(event(0), event(5 * 60 + 1))
    assert len(blocks) == 2


def test_no_events_no_blocks(blocks_of):
    assert blocks_of() == []


def reference_blocks(events: list[Event]) -> list[tuple]:
    """The rule as written, request by request and source by source: a request more than
    five hours after its block's start or after the previous request of its source opens a
    block floored to the hour. In order of start, then source."""
    blocks: list[list] = []
    latest: dict[str, list] = {}
    for at, cost, tokens, model, source in sorted(events, key=lambda e: (e[4], e[0])):
        block = latest.get(source)
        if block is None or at - block[1] > BLOCK or at - block[3] > BLOCK:
            block = [source, at.replace(minute=0, second=0, microsecond=0), at, at, 0, 0,
                     Decimal(0), set()]  # fmt: skip
            blocks.append(block)
            latest[source] = block
        block[3] = at
        block[4] += 1
        block[5] += tokens
        block[6] += cost
        block[7].add(model)
    return sorted((tuple(b) for b in blocks), key=lambda b: (b[1], b[0]))


def test_blocks_equal_the_rule_applied_request_by_request(warehouse):
    rng = random.Random(7)
    for _ in range(30):
        at, events = T, []
        sources = rng.choice([["claude_code"], ["claude_code", "codex"], ["api", "codex"]])
        for _ in range(rng.randint(1, 400)):
            # bursts and pauses, some landing on the hour or on a block's last instant
            to_the_hour = at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            at += rng.choice([timedelta(seconds=rng.randint(0, 900)), timedelta(hours=1),
                              timedelta(hours=rng.uniform(0, 7)), timedelta(hours=5)])  # fmt: skip
            if rng.random() < 0.2:
                at = max(at, to_the_hour)
            events.append((at, Decimal(rng.randint(0, 10**6)) / 10**9,
                           rng.randint(0, 10**6), rng.choice("abc"),
                           rng.choice(sources)))  # fmt: skip
        batch_rows = rng.choice([3, 7, 50_000])  # blocks that run on across batches, or not
        got = [(b.source, b.start, b.first_at, b.last_at, b.requests, b.tokens, b.cost_usd,
                b.models) for b in blocks_in(warehouse, events, batch_rows)]  # fmt: skip
        assert got == reference_blocks(events)


def test_each_source_has_blocks_of_its_own(blocks_of):
    """Claude Code's and Codex's usage limits run on separate windows: in one sequence, a
    Codex request at 08:10 opened a block from 08:00 to 13:00 that the Claude requests at
    09:40 and 12:30 fell into, as if Claude's window had started at 08:00 and ended at 13:00
    (`ccusage blocks` shows Claude's from 09:00 to 14:00)."""
    blocks = blocks_of(event(-90, "5", source="codex"), event(0), event(170),
                       event(250, "5", source="codex"))  # fmt: skip
    assert [(b.source, b.start.strftime("%H:%M"), b.requests, b.cost_usd) for b in blocks] == [
        ("codex", "08:00", 1, Decimal(5)),
        ("claude_code", "09:00", 2, Decimal(2)),
        ("codex", "13:00", 1, Decimal(5)),
    ]
    rows = [b.as_row(T + timedelta(minutes=255)) for b in blocks]  # 13:55
    assert [(r["source"], r["active"]) for r in rows] == [
        ("codex", False), ("claude_code", True), ("codex", True)
    ]  # fmt: skip


def test_the_active_block_has_a_burn_rate_and_a_projection(blocks_of):
    (block,) = blocks_of(event(0, "2"), event(60, "2"))
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
