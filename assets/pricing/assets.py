"""Pricing assets: every usage event with its cost, per UTC day."""

from collections.abc import Iterator

import dagster as dg
import polars as pl

from assets.partitions import daily_partitions, window
from assets.pricing.catalog import price_table, stored_overrides
from assets.pricing.transform import price_keys, price_usage
from assets.reporting import preview, schema_check, table_metadata
from assets.resources import CanonicalStoreResource, WarehouseResource
from schemas.frames import UsagePricedFrame
from schemas.warehouse import TOKEN_NAMES, USAGE_PRICED

TOKEN_TOTALS = TOKEN_NAMES


@dg.asset(
    metadata=table_metadata(USAGE_PRICED),
    group_name="pricing",
    kinds={"duckdb", "polars"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["token_usage_events"],
    pool="warehouse",
    check_specs=[
        dg.AssetCheckSpec("schema", asset="usage_priced", blocking=True,
                          description="Every row matches UsagePricedFrame."),
        dg.AssetCheckSpec("tokens_reconcile", asset="usage_priced", blocking=True,
                          description="Priced requests and tokens equal the canonical store's."),
        dg.AssetCheckSpec("unpriced_models", asset="usage_priced",
                          description="Models without a price, and the tokens at stake."),
    ],
)  # fmt: skip
def usage_priced(
    context: dg.AssetExecutionContext,
    canonical_store: CanonicalStoreResource,
    warehouse: WarehouseResource,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Every usage event of the window with its cost in exact decimal USD, priced with
    genai-prices at the event's day (overrides from `price_overrides` win), the long-context
    rule applied per request. Records which price was used (`price_source`) and whether the
    event is `priced`, `unpriced` (with the reason) or `reported` (tool-reported cost only)."""
    start, end = window(context)
    store, store_warehouse = canonical_store.store(), warehouse.open()
    # the totals the check compares with, read in the same snapshot as the events
    usage, canonical = store.usage_window_with_totals(start, end)
    overrides = stored_overrides(store)
    priced = price_usage(usage, price_table(price_keys(usage), overrides))
    priced = priced.select(USAGE_PRICED.column_names)
    rows = store_warehouse.replace_window(USAGE_PRICED, start, end, priced)
    status = priced.group_by("pricing_status").len()
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "window": f"{start} .. {end}",
            "cost_usd": str(priced["cost_usd"].sum() or 0),
            "pricing_status": dg.MetadataValue.json(dict(status.iter_rows())),
            "preview": preview(
                priced.sort("cost_usd", descending=True, nulls_last=True).select(
                    "day",
                    "source",
                    "model",
                    "input_tokens",
                    "output_tokens",
                    "cost_usd",
                    "pricing_status",
                    "price_source",
                )
            ),
        }
    )
    yield schema_check(priced, UsagePricedFrame)
    yield reconcile_check(priced, canonical)
    yield unpriced_check(priced)


def reconcile_check(priced: pl.DataFrame, canonical: dict[str, int]) -> dg.AssetCheckResult:
    derived = {"requests": priced.height, **{c: int(priced[c].sum()) for c in TOKEN_TOTALS}}
    differences = {k: derived[k] - canonical[k] for k in canonical if derived[k] != canonical[k]}
    return dg.AssetCheckResult(
        check_name="tokens_reconcile", passed=not differences,
        metadata={"canonical": dg.MetadataValue.json(canonical),
                  "differences": dg.MetadataValue.json(differences)},
    )  # fmt: skip


def unpriced_check(priced: pl.DataFrame) -> dg.AssetCheckResult:
    unpriced = priced.filter(pl.col("pricing_status") == "unpriced")
    at_stake = (
        unpriced.group_by("provider", "model", "unpriced_reason")
        .agg(pl.len().alias("requests"),
             pl.sum_horizontal(*TOKEN_TOTALS[:2], *TOKEN_TOTALS[3:]).sum().alias("tokens"))
        .sort("tokens", descending=True)
    )  # fmt: skip
    return dg.AssetCheckResult(
        check_name="unpriced_models", passed=unpriced.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"models": dg.MetadataValue.json(sorted(set(unpriced["model"]))),
                  "unpriced_requests": unpriced.height, "at_stake": preview(at_stake)},
    )  # fmt: skip
