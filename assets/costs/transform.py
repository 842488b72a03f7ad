"""Cost rollups: pure polars transforms over priced usage.

Cost modes follow ccusage: `calculate` (computed from prices), `display` (the tool-reported
cost only), `auto` (reported where present, else computed). `cost_usd` is the auto cost.
Billed cost is zero for usage covered by a subscription (`subscription_covered`, so that a
report can take the billed cost in any mode); notional cost is what the same usage would have
cost at API prices."""

from __future__ import annotations

import polars as pl

from schemas.warehouse import COST_DAILY, TOKEN_NAMES

MONEY = pl.Decimal(38, 12)
ZERO = pl.lit(0).cast(MONEY)  # a Decimal literal would make polars import numpy (0.1 s)
TOKEN_COLUMNS = list(TOKEN_NAMES)
DAILY_KEYS = ["day", "company_id", "source", "project", "agent", "session_key", "model"]


def _money_sum(expr: pl.Expr) -> pl.Expr:
    return expr.cast(MONEY).sum().fill_null(ZERO).cast(MONEY)


def cost_daily(priced: pl.DataFrame, subscription_sources: frozenset[str]) -> pl.DataFrame:
    """Day x source x project x agent x session (the root session) x model."""
    unpriced = pl.col("pricing_status") == "unpriced"
    tokens = pl.sum_horizontal(
        "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens",
        "cache_write_1h_tokens",
    )  # fmt: skip
    auto = pl.col("cost_usd")  # the auto cost, as pricing defines it (reported, else computed)
    covered = pl.col("source").is_in(list(subscription_sources))
    grouped = (
        priced.with_columns(pl.col("root_session_key").alias("session_key"))
        .group_by(DAILY_KEYS)
        .agg(
            pl.len().cast(pl.Int64).alias("requests"),
            *[pl.col(c).sum().cast(pl.Int64) for c in TOKEN_COLUMNS],
            pl.col("web_search_requests").sum().cast(pl.Int64),
            _money_sum(pl.col("computed_cost_usd")).alias("computed_cost_usd"),
            _money_sum(pl.col("reported_cost_usd")).alias("reported_cost_usd"),
            _money_sum(auto).alias("cost_usd"),
            _money_sum(pl.when(covered).then(ZERO).otherwise(auto)).alias("billed_cost_usd"),
            _money_sum(pl.col("computed_cost_usd")).alias("notional_cost_usd"),
            covered.first().alias("subscription_covered"),  # a source's: one per group
            unpriced.sum().cast(pl.Int64).alias("unpriced_requests"),
            pl.when(unpriced)
            .then(tokens)
            .otherwise(0)
            .sum()
            .cast(pl.Int64)
            .alias("unpriced_tokens"),
            pl.col("occurred_at").min().alias("first_at"),
            pl.col("occurred_at").max().alias("last_at"),
        )
    )
    return grouped.select(COST_DAILY.column_names).sort(DAILY_KEYS, nulls_last=True)
