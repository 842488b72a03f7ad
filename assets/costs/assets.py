"""Cost rollups for finance: per UTC day, from priced usage."""

from collections.abc import Iterator

import dagster as dg
import polars as pl

from assets.costs.transform import cost_daily as roll_up_daily
from assets.partitions import daily_partitions, window
from assets.reporting import preview, schema_check, table_metadata
from assets.resources import WarehouseResource
from ingestion.settings import get_settings
from schemas.frames import CostDailyFrame
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
    priced = store.read_window(USAGE_PRICED, start, end)
    daily = roll_up_daily(priced, get_settings().subscription_source_set)
    rows = store.replace_window(COST_DAILY, start, end, daily)
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "window": f"{start} .. {end}",
            "cost_usd": str(daily["cost_usd"].sum() or 0),
            "preview": preview(daily.sort("cost_usd", descending=True).select(
                "day", "source", "project", "model", "requests", "cost_usd")),
        }
    )  # fmt: skip
    yield schema_check(daily, CostDailyFrame)
    columns = ["requests", "input_tokens", "output_tokens", "cost_usd"]
    expected = {
        "requests": priced.height,
        "input_tokens": int(priced["input_tokens"].sum() or 0),
        "output_tokens": int(priced["output_tokens"].sum() or 0),
        "cost_usd": str(
            priced.select(pl.coalesce("reported_cost_usd", "computed_cost_usd").sum()).item() or 0
        ),
    }
    got = {c: (str(daily[c].sum() or 0) if c == "cost_usd" else int(daily[c].sum() or 0))
           for c in columns}  # fmt: skip
    yield dg.AssetCheckResult(
        check_name="totals_match_usage_priced", passed=got == expected,
        metadata={"expected": dg.MetadataValue.json(expected), "got": dg.MetadataValue.json(got)},
    )  # fmt: skip
