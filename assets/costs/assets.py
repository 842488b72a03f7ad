"""Cost rollups for finance: per UTC day, from priced usage."""

from collections import Counter
from collections.abc import Iterator

import dagster as dg

from assets.costs.transform import cost_daily as roll_up_daily
from assets.partitions import daily_partitions, window
from assets.reporting import SchemaCheck, TopRows, rollup_totals, table_metadata, totals_json
from assets.resources import WarehouseResource
from assets.slices import window_slices
from ingestion.settings import get_settings
from schemas.frames import CostDailyFrame
from schemas.money import decimal_text
from schemas.warehouse import COST_DAILY, USAGE_PRICED


@dg.asset(
    metadata=table_metadata(COST_DAILY),
    group_name="costs",
    kinds={"duckdb", "polars"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["usage_priced"],
    pool="warehouse",
    check_specs=[
        dg.AssetCheckSpec("schema", asset="cost_daily", blocking=True,
                          description="Every row matches CostDailyFrame."),
        dg.AssetCheckSpec("totals_match_usage_priced", asset="cost_daily", blocking=True,
                          description="Requests, tokens and cost equal usage_priced's."),
    ],
)  # fmt: skip
def cost_daily(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Cost and tokens by day x source x project x agent x session x model, with the cost
    modes (computed, reported, auto = `cost_usd`), billed vs notional (API-equivalent) cost for
    sources a subscription covers (TALLY_SUBSCRIPTION_SOURCES), and the unpriced remainder."""
    start, end = window(context)
    store = warehouse.open()
    subscription_sources = get_settings().subscription_source_set
    slices = window_slices(start, end, store.rows_by_day(USAGE_PRICED, start, end),
                           get_settings().materialize_slice_events)  # fmt: skip
    rows = 0
    expected: Counter[str] = Counter()
    got: Counter[str] = Counter()
    schema = SchemaCheck(CostDailyFrame)
    top = TopRows("cost_usd", ["day", "source", "project", "model", "requests", "cost_usd"])
    for slice_start, slice_end in slices:
        priced = store.read_window(USAGE_PRICED, slice_start, slice_end)
        daily = roll_up_daily(priced, subscription_sources)
        rows += store.replace_window(COST_DAILY, slice_start, slice_end, daily)
        expected.update(rollup_totals(priced, "cost_usd"))
        got.update(rollup_totals(daily, "cost_usd"))
        schema.validate(daily)
        top.add(daily)
        del priced, daily
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "window": f"{start} .. {end}",
            "slices": len(slices),
            "cost_usd": decimal_text(got["cost_usd"]),
            "preview": top.preview(),
        }
    )
    yield schema.result()
    yield dg.AssetCheckResult(
        check_name="totals_match_usage_priced", passed=got == expected,
        metadata={"expected": totals_json(expected), "got": totals_json(got)},
    )  # fmt: skip
