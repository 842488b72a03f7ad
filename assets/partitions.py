"""Daily UTC partitions shared by every windowed asset (their definition must be known where
the assets are declared; the code location in `pipelines/` re-exports it)."""

from __future__ import annotations

from datetime import date, datetime

import dagster as dg

from ingestion.settings import get_settings

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=get_settings().partitions_start, timezone="UTC", end_offset=1
)


def window(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """The run's UTC days [start, end): one partition or a whole backfill range."""
    time_window = context.partition_time_window
    return _as_date(time_window.start), _as_date(time_window.end)


def _as_date(moment: datetime) -> date:
    return moment.date()
