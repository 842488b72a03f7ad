"""Pandera models of the frames that cross a boundary (written to the warehouse)."""

from __future__ import annotations

from typing import Annotated

import pandera.polars as pa
import polars as pl

# Money in the warehouse: exact decimal USD, 12 places (pandera needs the parameters).
Money = Annotated[pl.Decimal, 38, 12]


class UsagePricedFrame(pa.DataFrameModel):
    day: pl.Date
    event_id: int = pa.Field(unique=True)
    source: str
    model: str
    input_tokens: int = pa.Field(ge=0)
    output_tokens: int = pa.Field(ge=0)
    reasoning_tokens: int = pa.Field(ge=0)
    cache_read_tokens: int = pa.Field(ge=0)
    cache_write_5m_tokens: int = pa.Field(ge=0)
    cache_write_1h_tokens: int = pa.Field(ge=0)
    computed_cost_usd: Money = pa.Field(nullable=True, ge=0)
    cost_usd: Money = pa.Field(nullable=True, ge=0)
    pricing_status: str = pa.Field(isin=["priced", "unpriced", "reported"])
    price_source: str

    @pa.dataframe_check
    def unpriced_rows_have_a_reason(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("pricing_status") == "priced") | pl.col("unpriced_reason").is_not_null()
        )

    @pa.dataframe_check
    def priced_rows_have_a_cost(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("pricing_status") != "priced") | pl.col("computed_cost_usd").is_not_null()
        )


class CostDailyFrame(pa.DataFrameModel):
    day: pl.Date
    source: str
    model: str
    requests: int = pa.Field(gt=0)
    cost_usd: Money = pa.Field(ge=0)
    billed_cost_usd: Money = pa.Field(ge=0)
    notional_cost_usd: Money = pa.Field(ge=0)
    subscription_covered: bool
    unpriced_requests: int = pa.Field(ge=0)

    class Config:
        unique = ("day", "company_id", "source", "project", "agent", "session_key", "model")


class UsageAttributedFrame(pa.DataFrameModel):
    """An attributed event names its issue and a confidence; an unattributed one says why."""

    day: pl.Date
    event_id: int = pa.Field(unique=True)
    message_id: str
    request_id: str
    cost_usd: Money = pa.Field(nullable=True, ge=0)
    issue_id: int = pa.Field(nullable=True)
    signal: str = pa.Field(
        isin=["explicit", "single-in-progress", "session-recent-touch", "session-commit",
              "unattributed"]
    )  # fmt: skip
    confidence: float = pa.Field(nullable=True, ge=0, le=1)
    reason: str = pa.Field(nullable=True, isin=["ambiguous", "stale", "no-signal"])
    engine_version: str

    @pa.dataframe_check
    def attributed_rows_name_an_issue(cls, data: pa.PolarsData) -> pl.LazyFrame:
        attributed = pl.col("signal") != "unattributed"
        return data.lazyframe.select(
            (attributed & pl.col("issue_id").is_not_null() & pl.col("confidence").is_not_null()
             & pl.col("reason").is_null())
            | (~attributed & pl.col("issue_id").is_null() & pl.col("reason").is_not_null())
        )  # fmt: skip
