"""Attribution assets: which work item every priced model request served, per UTC day."""

from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import dagster as dg
import polars as pl

from assets.attribution.engine import ENGINE_VERSION, AttributionSettings
from assets.attribution.transform import attribution_daily as roll_up
from assets.attribution.transform import usage_attributed as attribute_window
from assets.partitions import daily_partitions, window
from assets.reporting import SchemaCheck, TopRows, rollup_totals, table_metadata, totals_json
from assets.resources import CanonicalStoreResource, WarehouseResource
from assets.slices import read_ahead, window_slices
from ingestion.settings import get_settings
from schemas.frames import UsageAttributedFrame
from schemas.money import decimal_text
from schemas.warehouse import ATTRIBUTION_DAILY, USAGE_ATTRIBUTED, USAGE_PRICED

if TYPE_CHECKING:
    from ingestion.extract_work import AttributionInputs


def engine_settings() -> AttributionSettings:
    settings = get_settings()
    return AttributionSettings(
        touch_window=timedelta(minutes=settings.attribution_touch_window_minutes),
        commit_window=timedelta(minutes=settings.attribution_commit_window_minutes),
    )


@dg.asset(
    metadata=table_metadata(USAGE_ATTRIBUTED),
    group_name="attribution",
    kinds={"duckdb", "polars"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["usage_priced", "work_graph"],
    pool="warehouse",
    check_specs=[
        dg.AssetCheckSpec("schema", asset="usage_attributed", blocking=True,
                          description="Every row matches UsageAttributedFrame."),
        dg.AssetCheckSpec("every_priced_event_attributed", asset="usage_attributed",
                          description="One decision per priced event of the window."),
    ],
)  # fmt: skip
def usage_attributed(
    context: dg.AssetExecutionContext,
    canonical_store: CanonicalStoreResource,
    warehouse: WarehouseResource,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Every priced event of the window with the work item it served, decided by the first
    tier that decides (explicit hint or heartbeat run, single issue in progress, the
    session's recent touch, the session's next commit), board state as of the event's time.
    Unattributed events say why (`ambiguous`, `stale`, `no-signal`)."""
    start, end = window(context)
    settings = engine_settings()
    store, store_warehouse = canonical_store.store(), warehouse.open()
    slices = window_slices(start, end, store_warehouse.rows_by_day(USAGE_PRICED, start, end),
                           get_settings().materialize_slice_events)  # fmt: skip
    issues = store.issues()
    rows = priced_rows = 0
    by_signal: list[pl.DataFrame] = []
    schema = SchemaCheck(UsageAttributedFrame)
    top = TopRows("cost_usd", ["day", "root_session_key", "model", "cost_usd",
                               "issue_identifier", "signal", "reason"])  # fmt: skip

    def read_inputs(first: date, end: date) -> "AttributionInputs":
        return store.attribution_inputs(first, end, settings.touch_window, settings.commit_window)

    for (slice_start, slice_end), inputs in read_ahead(slices, read_inputs):
        priced = store_warehouse.read_window(USAGE_PRICED, slice_start, slice_end)
        attributed = attribute_window(inputs, priced, issues, settings)
        priced_rows += priced.height
        del inputs, priced
        rows += store_warehouse.replace_window(USAGE_ATTRIBUTED, slice_start, slice_end, attributed)
        by_signal.append(attributed.group_by("signal").agg(pl.col("cost_usd").sum(), pl.len()))
        schema.validate(attributed)
        top.add(attributed)
        del attributed
    signals = (
        pl.concat(by_signal).group_by("signal").agg(pl.col("cost_usd").sum(), pl.col("len").sum())
    )
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "window": f"{start} .. {end}",
            "slices": len(slices),
            "engine_version": ENGINE_VERSION,
            "by_signal": dg.MetadataValue.json(
                {row["signal"]: {"requests": row["len"],
                                 "cost_usd": decimal_text(row["cost_usd"] or Decimal(0))}
                 for row in signals.iter_rows(named=True)}
            ),
            "preview": top.preview(),
        }
    )  # fmt: skip
    yield schema.result()
    missing = priced_rows - rows
    yield dg.AssetCheckResult(
        check_name="every_priced_event_attributed", passed=missing == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"priced": priced_rows, "attributed": rows,
                  "hint": "events ingested or removed between pricing and attribution: "
                          "re-materialise usage_priced and usage_attributed"},
    )  # fmt: skip


@dg.asset(
    metadata=table_metadata(ATTRIBUTION_DAILY),
    group_name="costs",
    kinds={"duckdb", "polars"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["usage_attributed"],
    pool="warehouse",
    check_specs=[
        dg.AssetCheckSpec("totals_match_usage_attributed", asset="attribution_daily",
                          blocking=True,
                          description="Requests, tokens and cost equal usage_attributed's."),
    ],
)  # fmt: skip
def attribution_daily(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Cost and tokens by day x work item x signal x reason (with the session's source,
    project and agent): what `tally report costs --by issue|goal` and `tally report
    attribution` read."""
    start, end = window(context)
    store = warehouse.open()
    slices = window_slices(start, end, store.rows_by_day(USAGE_ATTRIBUTED, start, end),
                           get_settings().materialize_slice_events)  # fmt: skip
    rows = 0
    expected: Counter[str] = Counter()
    got: Counter[str] = Counter()
    attributed_cost = Decimal(0)
    top = TopRows("cost_usd", ["day", "issue_identifier", "issue_title", "signal", "requests",
                               "cost_usd"])  # fmt: skip
    for slice_start, slice_end in slices:
        attributed = store.read_window(USAGE_ATTRIBUTED, slice_start, slice_end)
        daily = roll_up(attributed)
        rows += store.replace_window(ATTRIBUTION_DAILY, slice_start, slice_end, daily)
        expected.update(rollup_totals(attributed, "cost_usd"))
        got.update(rollup_totals(daily, "cost_usd"))
        attributed_cost += daily.filter(pl.col("issue_id").is_not_null())["cost_usd"].sum() or 0
        top.add(daily)
        del attributed, daily
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "window": f"{start} .. {end}",
            "slices": len(slices),
            "cost_usd": decimal_text(got["cost_usd"]),
            "attributed_cost_usd": decimal_text(attributed_cost),
            "preview": top.preview(),
        }
    )
    yield dg.AssetCheckResult(
        check_name="totals_match_usage_attributed", passed=expected == got,
        metadata={"expected": totals_json(expected), "got": totals_json(got)},
    )  # fmt: skip
