"""Billed and notional cost, with a subscription covering one source, in every cost mode:
the daily rollup from the pure transforms, read back by the cost report."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import polars as pl
import pytest

from assets.costs.transform import cost_daily
from assets.pricing.catalog import price_table
from assets.pricing.transform import price_keys, price_usage
from ingestion.reports.costs import cost_report
from ingestion.warehouse.base import open_warehouse
from schemas.warehouse import COST_DAILY, USAGE_PRICED

DAY = date(2026, 10, 6)
MONEY = pl.Decimal(38, 12)


def _priced() -> pl.DataFrame:
    """A Claude Code request of 100,000 input tokens on Sonnet 4.5 ($0.30 at API prices) whose
    tool reported $0.25, and a Codex request of 100,000 uncached input tokens on GPT-5
    ($0.125), reporting nothing."""
    at = datetime(2026, 10, 6, 12, tzinfo=UTC)
    usage = pl.DataFrame({
        "event_id": [1, 2], "company_id": [1, 1], "source": ["claude_code", "codex"],
        "session_key": ["a", "b"], "root_session_key": ["a", "b"], "project": ["web", "web"],
        "agent": ["eng", "eng"], "occurred_at": [at, at], "day": [DAY, DAY],
        "provider": ["anthropic", "openai"], "model": ["claude-sonnet-4-5-20250929", "gpt-5"],
        "input_tokens": [100_000, 100_000], "output_tokens": [0, 0], "reasoning_tokens": [0, 0],
        "cache_read_tokens": [0, 0], "cache_write_5m_tokens": [0, 0],
        "cache_write_1h_tokens": [0, 0], "web_search_requests": [0, 0],
        "service_tier": [None, None], "speed": [None, None],
        "reported_cost_usd": [Decimal("0.25"), None],
    }, schema_overrides={"reported_cost_usd": MONEY, "service_tier": pl.String,
                         "speed": pl.String})  # fmt: skip
    priced = price_usage(usage, price_table(price_keys(usage), []))
    return priced.select(USAGE_PRICED.column_names)


def test_the_daily_rollup_marks_the_sources_a_subscription_covers():
    daily = cost_daily(_priced(), frozenset({"codex"})).sort("source")
    assert daily["subscription_covered"].to_list() == [False, True]
    assert daily["billed_cost_usd"].to_list() == [Decimal("0.25"), Decimal(0)]
    assert daily["notional_cost_usd"].to_list() == [Decimal("0.3"), Decimal("0.125")]


@pytest.mark.parametrize(
    ("mode", "cost", "billed"),
    [
        ("auto", "0.375", "0.25"),  # Claude's reported cost; Codex covered
        ("calculate", "0.425", "0.3"),  # Claude's computed cost; Codex covered
        ("display", "0.25", "0.25"),  # only reported costs; Codex reported none
    ],
)
def test_billed_cost_is_the_modes_cost_of_the_usage_no_subscription_covers(
    tmp_path, mode, cost, billed
):
    """Billed cost was the auto cost whatever the mode: `--mode calculate` with no
    subscription at all showed a billed cost other than the cost beside it."""
    warehouse = open_warehouse(f"duckdb://{tmp_path / 'w.duckdb'}")
    warehouse.replace_window(COST_DAILY, DAY, DAY, cost_daily(_priced(), frozenset({"codex"})))
    (row,) = cost_report(warehouse, "day", mode)
    assert (row["cost_usd"], row["billed_cost_usd"]) == (Decimal(cost), Decimal(billed))
    assert row["notional_cost_usd"] == Decimal("0.425")  # API prices, whatever the mode

    uncovered = open_warehouse(f"duckdb://{tmp_path / 'u.duckdb'}")
    uncovered.replace_window(COST_DAILY, DAY, DAY, cost_daily(_priced(), frozenset()))
    (row,) = cost_report(uncovered, "day", mode)
    assert row["billed_cost_usd"] == row["cost_usd"] == Decimal(cost)
