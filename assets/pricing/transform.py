"""Price usage events: a pure polars transform from (usage, unit prices) to priced usage.

Rules (reference/pricing.md):
- Anthropic's long-context rule per request: when the request's total input (uncached +
  cache reads + cache writes) exceeds a tier's start, every token of the request is priced
  at that tier (genai-prices' cliff semantics).
- Cache writes are priced 5m or 1h; OpenAI cached input is a cache read (its input price if
  the model has no cache price); reasoning is already inside output.
- Web search requests are priced per thousand; fast mode multiplies the whole request.
- A request without a price is `unpriced` with the reason (never $0); if the tool reported a
  cost it is `reported` and that cost is used; the reported cost is always kept.
- `cost_usd` is the `auto` cost of ccusage's modes, in this table as in every rollup: the
  reported cost where the tool reported one, else the computed one.
Money is exact: tokens times whole picodollars (1e-12 USD) per token in Int64, then
Decimal(38, 12) USD."""

from __future__ import annotations

import polars as pl

from assets.pricing.catalog import CATEGORIES, PRICE

TOKENS = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cache_read": "cache_read_tokens",
    "cache_write_5m": "cache_write_5m_tokens",
    "cache_write_1h": "cache_write_1h_tokens",
}
KEYS = ["company_id", "provider", "model", "day", "service_tier"]
USD_COLUMNS = {
    "input_pusd_cost": "input_cost_usd",
    "output_pusd_cost": "output_cost_usd",
    "cache_read_pusd_cost": "cache_read_cost_usd",
    "cache_write_pusd_cost": "cache_write_cost_usd",
    "web_search_pusd_cost": "web_search_cost_usd",
    "computed_pusd": "computed_cost_usd",
}


INPUT_TYPES = {
    "company_id": pl.Int64,
    "provider": pl.String,
    "model": pl.String,
    "day": pl.Date,
    "service_tier": pl.String,
    "speed": pl.String,
    "reported_cost_usd": PRICE,
    **{column: pl.Int64 for column in (*TOKENS.values(), "reasoning_tokens")},
    "web_search_requests": pl.Int64,
}


def _typed(usage: pl.DataFrame) -> pl.DataFrame:
    return usage.with_columns(pl.col(name).cast(kind) for name, kind in INPUT_TYPES.items())


def price_keys(usage: pl.DataFrame) -> pl.DataFrame:
    """The distinct keys to resolve prices for."""
    return _typed(usage).select(KEYS).unique()


def _per_token(category: str, total_input: pl.Expr) -> pl.Expr:
    """Picodollars per token for the request: the tier's price once the request's total input
    passes the tier's start, else the base price."""
    start = pl.col(f"{category}_tier_start")
    in_tier = start.is_not_null() & (total_input > start)
    price = (
        pl.when(in_tier).then(pl.col(f"{category}_tier_pusd")).otherwise(pl.col(f"{category}_pusd"))
    )
    if category == "cache_read":  # no cache price: cached input costs what input costs
        input_start = pl.col("input_tier_start")
        input_in_tier = input_start.is_not_null() & (total_input > input_start)
        price = pl.coalesce(
            price,
            pl.when(input_in_tier).then(pl.col("input_tier_pusd")).otherwise(pl.col("input_pusd")),
        )
    return price


# from text: a Decimal literal would make polars import numpy (0.1 s of a short command)
PICODOLLAR = pl.lit("0.000000000001").cast(PRICE)


def picodollars_to_usd(picodollars: pl.Expr) -> pl.Expr:
    """Whole picodollars as Decimal(38, 12) USD, exactly: the count widened to a scale-0
    decimal, times one picodollar (a scale-12 decimal), keeps its unscaled value as it is.
    Dividing by 10^12 gives the same values with a decimal division per row (10 million
    events: 0.39 s a column against 0.15 s); re-reading the buffer at scale 12 through
    pyarrow, as before, took 0.19 s and made every command that prices import pyarrow."""
    return picodollars.cast(pl.Decimal(38, 0)) * PICODOLLAR


def _first_named(conditions: list[tuple[pl.Expr, str]], otherwise: str | None = None) -> pl.Expr:
    """The name of the first condition that holds, else `otherwise`. Chosen as a small integer
    and named once at the end: a string literal per condition and row made the unpriced reason
    the costliest step of pricing (3 s of 10 for 10 million events)."""
    chosen = pl.when(conditions[0][0]).then(pl.lit(0, dtype=pl.Int8))
    for index, (condition, _) in enumerate(conditions[1:], start=1):
        chosen = chosen.when(condition).then(pl.lit(index, dtype=pl.Int8))
    names = {index: name for index, (_, name) in enumerate(conditions)}
    return chosen.replace_strict(names, default=otherwise, return_dtype=pl.String)


def _key_code(prices: pl.DataFrame) -> pl.Expr:
    """The price key (KEYS) of each row as one integer: each column's value replaced by its
    index among the price table's values of that column (null is a value too), the indexes
    combined in mixed radix. Equal keys get equal codes and different keys different ones; a
    row with a value the price table lacks gets null, and matches nothing."""
    code: pl.Expr = pl.lit(0, dtype=pl.Int64)
    for key in KEYS:
        values = prices.get_column(key).unique(maintain_order=True)
        present = values.drop_nulls()
        index = pl.col(key).replace_strict(
            present, pl.int_range(present.len(), eager=True), default=None,
            return_dtype=pl.Int64,
        )  # fmt: skip
        if values.null_count():
            index = pl.when(pl.col(key).is_null()).then(present.len()).otherwise(index)
        code = code * values.len() + index
    return code


def join_prices(usage: pl.DataFrame, prices: pl.DataFrame) -> pl.DataFrame:
    """Each event with its key's prices (see `_joined`)."""
    return _joined(usage.lazy(), prices).collect(engine="in-memory")


def _joined(usage: pl.LazyFrame, prices: pl.DataFrame) -> pl.LazyFrame:
    """A left join on KEYS, nulls equal, made on one integer code of the key. The join on the
    five columns (three of them text) took 4-10 s of pricing's 8-18 s for 10 million events."""
    code = _key_code(prices)
    return (
        usage.with_columns(code.alias("_price_key"))
        .join(
            prices.with_columns(code.alias("_price_key")).drop(KEYS).lazy(),
            on="_price_key",
            how="left",
            maintain_order="left",
        )
        .drop("_price_key")
    )


def price_usage(usage: pl.DataFrame, prices: pl.DataFrame) -> pl.DataFrame:
    total_input = (
        pl.col("input_tokens")
        + pl.col("cache_read_tokens")
        + pl.col("cache_write_5m_tokens")
        + pl.col("cache_write_1h_tokens")
    )
    # only what the arithmetic and the output need: the decimal per-MTok columns stay behind
    needed = [
        *KEYS,
        "price_status",
        "unpriced_reason",
        "price_source",
        "matched_model",
        "fast_multiplier_milli",
        "web_search_pusd",
        *[f"{c}_{kind}" for c in CATEGORIES for kind in ("pusd", "tier_pusd", "tier_start")],
    ]
    # One lazy query, so that its common subexpressions are computed once, on the in-memory
    # engine: 10 million events took 2.4-3.0 s this way, 3.0-3.5 s as eager steps and 4.2-10 s
    # (twice the CPU) on polars 2's default streaming engine.
    joined = _joined(_typed(usage).lazy(), prices.select(needed))
    # exact integer arithmetic in picodollars; converted to decimal USD once, at the end
    costs = {category: pl.col(TOKENS[category]) * _per_token(category, total_input)
             for category in CATEGORIES}  # fmt: skip
    missing = [((pl.col(TOKENS[c]) > 0) & costs[c].is_null(), f"no {c} price") for c in CATEGORIES]
    long_context = pl.any_horizontal(
        [
            pl.col(f"{c}_tier_start").is_not_null() & (total_input > pl.col(f"{c}_tier_start"))
            for c in CATEGORIES
        ]
    ).fill_null(False)
    web_search = pl.col("web_search_requests") * pl.col("web_search_pusd")
    fast = pl.col("speed") == "fast"
    frame = joined.with_columns(
        long_context.alias("long_context"),
        costs["input"].fill_null(0).alias("input_pusd_cost"),
        costs["output"].fill_null(0).alias("output_pusd_cost"),
        costs["cache_read"].fill_null(0).alias("cache_read_pusd_cost"),
        (costs["cache_write_5m"].fill_null(0) + costs["cache_write_1h"].fill_null(0)).alias(
            "cache_write_pusd_cost"
        ),
        pl.when(pl.col("web_search_requests") > 0).then(web_search).otherwise(0)
        .alias("web_search_pusd_cost"),
        pl.coalesce(
            pl.when(pl.col("price_status") == "unpriced").then(pl.col("unpriced_reason")),
            _first_named(
                [
                    *missing,
                    ((pl.col("web_search_requests") > 0) & web_search.is_null(),
                     "no web search price"),
                    (fast & pl.col("fast_multiplier_milli").is_null(),
                     "no fast-mode multiplier for this model"),
                ]
            ),
        ).alias("unpriced_reason"),
    )  # fmt: skip
    subtotal = (
        pl.col("input_pusd_cost")
        + pl.col("output_pusd_cost")
        + pl.col("cache_read_pusd_cost")
        + pl.col("cache_write_pusd_cost")
        + pl.col("web_search_pusd_cost")
    )
    total = (
        pl.when(fast)
        .then((subtotal * pl.col("fast_multiplier_milli") + 500) // 1000)
        .otherwise(subtotal)
    )
    frame = frame.with_columns(
        pl.when(pl.col("unpriced_reason").is_null()).then(total).alias("computed_pusd")
    )
    frame = frame.with_columns(
        picodollars_to_usd(pl.col(pusd)).alias(usd) for pusd, usd in USD_COLUMNS.items()
    )
    status = _first_named(
        [
            (pl.col("computed_pusd").is_not_null(), "priced"),
            (pl.col("reported_cost_usd").is_not_null(), "reported"),
        ],
        otherwise="unpriced",
    )
    return frame.with_columns(
        status.alias("pricing_status"),
        pl.coalesce("reported_cost_usd", "computed_cost_usd").alias("cost_usd"),
        pl.col("price_source").fill_null("none"),
    ).collect(engine="in-memory")
