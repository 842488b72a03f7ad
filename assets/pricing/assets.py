"""Pricing assets: every usage event with its cost, per UTC day."""

from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import dagster as dg
import polars as pl

from assets.partitions import daily_partitions, window
from assets.pricing.catalog import price_table, stored_overrides
from assets.pricing.transform import price_keys, price_usage
from assets.reporting import SchemaCheck, TopRows, preview, table_metadata
from assets.resources import CanonicalStoreResource, WarehouseResource
from assets.slices import read_ahead, window_slices
from ingestion.settings import get_settings
from schemas.frames import UsagePricedFrame
from schemas.money import decimal_text
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
        dg.AssetCheckSpec("one_source_per_request", asset="usage_priced",
                          description="No request posted over the API is stored under "
                          "another source too (a transcript's requests posted as `api` "
                          "count twice)."),
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
    overrides = stored_overrides(store)
    requests_by_day = {day: n for day, (n, _) in store.daily_totals(start, end).items()}
    slices = window_slices(start, end, requests_by_day, get_settings().materialize_slice_events)
    rows, cost = 0, Decimal(0)
    canonical: Counter[str] = Counter()
    derived: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    unpriced: list[pl.DataFrame] = []
    schema = SchemaCheck(UsagePricedFrame)
    top = TopRows("cost_usd", ["day", "source", "model", "input_tokens", "output_tokens",
                               "cost_usd", "pricing_status", "price_source"])  # fmt: skip
    # the totals the check compares with are read in the same snapshot as the events
    for (slice_start, slice_end), (usage, slice_canonical) in read_ahead(
        slices, store.usage_window_with_totals
    ):
        priced = price_usage(usage, price_table(price_keys(usage), overrides))
        del usage
        priced = priced.select(USAGE_PRICED.column_names)
        rows += store_warehouse.replace_window(USAGE_PRICED, slice_start, slice_end, priced)
        cost += priced["cost_usd"].sum() or 0
        canonical.update(slice_canonical)
        derived.update(priced_totals(priced))
        statuses.update(dict(priced.group_by("pricing_status").len().iter_rows()))
        unpriced.append(unpriced_at_stake(priced))
        schema.validate(priced)
        top.add(priced)
        del priced
        if len(slices) > 1:
            context.log.info(f"usage_priced: {slice_start} .. {slice_end} written")
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "window": f"{start} .. {end}",
            "slices": len(slices),
            "cost_usd": decimal_text(cost),
            "pricing_status": dg.MetadataValue.json(dict(statuses)),
            "preview": top.preview(),
        }
    )
    yield schema.result()
    yield reconcile_check(derived, canonical)
    yield unpriced_check(pl.concat(unpriced))
    yield stored_twice_check(store.requests_stored_twice(start, end))


def priced_totals(priced: pl.DataFrame) -> dict[str, int]:
    """Requests and each token column of priced events, as the store counts them."""
    return {"requests": priced.height, **{c: int(priced[c].sum()) for c in TOKEN_TOTALS}}


def reconcile_check(derived: Counter[str], canonical: Counter[str]) -> dg.AssetCheckResult:
    differences = {k: derived[k] - canonical[k] for k in canonical if derived[k] != canonical[k]}
    return dg.AssetCheckResult(
        check_name="tokens_reconcile", passed=not differences,
        metadata={"canonical": dg.MetadataValue.json(dict(canonical)),
                  "differences": dg.MetadataValue.json(differences)},
    )  # fmt: skip


def unpriced_at_stake(priced: pl.DataFrame) -> pl.DataFrame:
    """Requests and tokens without a price, by provider, model and reason."""
    return (
        priced.filter(pl.col("pricing_status") == "unpriced")
        .group_by("provider", "model", "unpriced_reason")
        .agg(pl.len().cast(pl.Int64).alias("requests"),
             pl.sum_horizontal(*TOKEN_TOTALS[:2], *TOKEN_TOTALS[3:]).sum().alias("tokens"))
    )  # fmt: skip


def unpriced_check(at_stake: pl.DataFrame) -> dg.AssetCheckResult:
    """`at_stake`: the `unpriced_at_stake` of each slice, concatenated."""
    at_stake = (
        at_stake.group_by("provider", "model", "unpriced_reason")
        .agg(pl.col("requests").sum(), pl.col("tokens").sum())
        .sort("tokens", descending=True)
    )
    requests = int(at_stake["requests"].sum() or 0)
    return dg.AssetCheckResult(
        check_name="unpriced_models", passed=requests == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"models": dg.MetadataValue.json(sorted(set(at_stake["model"]))),
                  "unpriced_requests": requests, "at_stake": preview(at_stake)},
    )  # fmt: skip


def stored_twice_check(twice: pl.DataFrame) -> dg.AssetCheckResult:
    """`twice`: `CanonicalStore.requests_stored_twice` of the window."""
    requests = int(twice["requests"].sum() or 0) if twice.height else 0
    return dg.AssetCheckResult(
        check_name="one_source_per_request", passed=requests == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"requests_counted_twice": requests,
                  "tokens_counted_twice": int(twice["tokens"].sum() or 0) if twice.height else 0,
                  "by_source": preview(twice),
                  "fix": "post a transcript's requests under its tool's source (claude_code, "
                         "codex) and the transcript's ids; `tally db drop-posted-copies` "
                         "drops the copies stored so far"},
    )  # fmt: skip
