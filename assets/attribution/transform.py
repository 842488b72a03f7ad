"""Attribution as warehouse frames: the engine's decisions joined to priced usage and to the
work item as it is now (title, status, project, goal), then rolled up by day and work item."""

from __future__ import annotations

import polars as pl

from assets.attribution.engine import AttributionSettings, attribute
from ingestion.extract_work import AttributionInputs
from schemas.warehouse import ATTRIBUTION_DAILY, TOKEN_NAMES, USAGE_ATTRIBUTED

MONEY = pl.Decimal(38, 12)
SIGNALS = ("explicit", "single-in-progress", "session-recent-touch", "session-commit",
           "unattributed")  # fmt: skip
REASONS = ("ambiguous", "stale", "no-signal")
PRICED_COLUMNS = ("day", "event_id", "company_id", "source", "session_key", "root_session_key",
                  "project", "agent", "occurred_at", "model", *TOKEN_NAMES, "computed_cost_usd",
                  "reported_cost_usd", "cost_usd", "pricing_status")  # fmt: skip


def usage_attributed(inputs: AttributionInputs, priced: pl.DataFrame, issues: pl.DataFrame,
                     settings: AttributionSettings) -> pl.DataFrame:  # fmt: skip
    """One row per priced event that the canonical store still holds (the two are read at
    different moments; the asset's check counts any difference)."""
    decided = attribute(inputs.events, inputs.hints, inputs.progress, inputs.touches,
                        inputs.commits, settings)  # fmt: skip
    keys = inputs.events.select("event_id", "message_id", "request_id")
    frame = (
        priced.select(PRICED_COLUMNS)
        .join(keys, on="event_id", how="inner")
        .join(decided, on="event_id", how="inner")
        .join(issues, on="issue_id", how="left")
        .with_columns(pl.col("hint_id").cast(pl.String))
    )
    return frame.select(USAGE_ATTRIBUTED.column_names).sort("root_session_key", "occurred_at")


def attribution_daily(attributed: pl.DataFrame) -> pl.DataFrame:
    issue = [name for name, _ in ATTRIBUTION_DAILY.columns[2:12]]
    keys = ["day", "company_id", *issue, "signal", "confidence", "reason", "source", "project",
            "agent"]  # fmt: skip
    tokens = pl.sum_horizontal("input_tokens", "output_tokens", "cache_read_tokens",
                               "cache_write_5m_tokens", "cache_write_1h_tokens")  # fmt: skip
    costs = [pl.col(c).cast(MONEY).sum().cast(MONEY)
             for c in ("computed_cost_usd", "reported_cost_usd", "cost_usd")]  # fmt: skip
    return (
        attributed.group_by(keys)
        .agg(
            pl.len().cast(pl.Int64).alias("requests"),
            *[pl.col(c).sum().cast(pl.Int64) for c in TOKEN_NAMES],
            tokens.sum().cast(pl.Int64).alias("tokens"),
            *costs,
            pl.col("root_session_key").n_unique().cast(pl.Int64).alias("sessions"),
        )
        .select(ATTRIBUTION_DAILY.column_names)
        .sort("day", "issue_id", "signal", nulls_last=True)
    )
