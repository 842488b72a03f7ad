"""Which price held for a model on a day: genai-prices (historical, with whole-request
long-context tiers and 5m/1h cache writes), overridden by `price_overrides` rows.

Prices are resolved once per distinct (company, provider, model, day, service tier) and
returned as a frame of unit prices per million tokens; `transform.price_usage` applies them
to every event at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import lru_cache
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

import polars as pl
from genai_prices import Usage, calc_price
from genai_prices.types import TieredPrices

from ingestion.model_patterns import ModelPattern, stored_model_pattern

if TYPE_CHECKING:
    from ingestion.store import CanonicalStore

CATEGORIES = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")
_GENAI_FIELDS = {
    "input": "input_mtok",
    "output": "output_mtok",
    "cache_read": "cache_read_mtok",
    "cache_write_5m": "cache_write_mtok",
    "cache_write_1h": "cache_write_1h_mtok",
}
_OVERRIDE_FIELDS = {
    "input": "input_per_mtok",
    "output": "output_per_mtok",
    "cache_read": "cache_read_per_mtok",
    "cache_write_5m": "cache_write_5m_per_mtok",
    "cache_write_1h": "cache_write_1h_per_mtok",
}
# Anthropic's fast mode bills the whole request at a multiple; genai-prices does not model
# it, so tally applies these (ccusage's overrides, reference/pricing.md §1.1).
FAST_MODE_MULTIPLIERS = {
    "claude-opus-4-6": Decimal(6),
    "claude-opus-4-7": Decimal(6),
    "claude-opus-4-8": Decimal(2),
}
PRICE = pl.Decimal(38, 12)
LIBRARY = f"genai-prices {version('genai-prices')}"

PICO = Decimal(10) ** 12  # picodollars per dollar: integer arithmetic, exact at 1e-12 USD


def picodollars_per_token(per_mtok: Decimal | None) -> int | None:
    """A price per million tokens as whole picodollars per token (its 12-decimal USD)."""
    if per_mtok is None:
        return None
    return int((Decimal(per_mtok) * PICO / Decimal(1_000_000)).to_integral_value())


PRICE_SCHEMA: dict[str, Any] = {
    "company_id": pl.Int64,
    "provider": pl.String,
    "model": pl.String,
    "day": pl.Date,
    "service_tier": pl.String,
    "price_status": pl.String,
    "unpriced_reason": pl.String,
    "price_source": pl.String,
    "matched_model": pl.String,
    "fast_multiplier": PRICE,
    "web_search_per_thousand": PRICE,
    **{f"{c}_per_mtok": PRICE for c in CATEGORIES},
    **{f"{c}_tier_start": pl.Int64 for c in CATEGORIES},
    **{f"{c}_tier_per_mtok": PRICE for c in CATEGORIES},
    # the same prices in whole picodollars per token, which the transform computes with
    **{f"{c}_pusd": pl.Int64 for c in CATEGORIES},
    **{f"{c}_tier_pusd": pl.Int64 for c in CATEGORIES},
    "web_search_pusd": pl.Int64,
    "fast_multiplier_milli": pl.Int64,
}


@dataclass(frozen=True)
class PriceOverride:
    id: int
    company_id: int | None
    provider: str
    pattern: ModelPattern
    effective_from: date
    effective_to: date | None
    per_mtok: dict[str, Decimal | None]
    web_search_per_thousand: Decimal | None

    def applies(self, company_id: int, provider: str, model: str, day: date) -> bool:
        return (
            (self.company_id is None or self.company_id == company_id)
            and self.provider == provider
            and self.effective_from <= day
            and (self.effective_to is None or day < self.effective_to)
            and self.pattern.fullmatch(model) is not None
        )


def stored_overrides(store: CanonicalStore) -> list[PriceOverride]:
    """The price overrides kept in the canonical store, as pricing applies them."""
    return overrides_from_frame(store.price_overrides())


def overrides_from_frame(frame: pl.DataFrame) -> list[PriceOverride]:
    def money(value: Any) -> Decimal | None:
        return None if value is None else Decimal(str(value))

    out = []
    for row in frame.iter_rows(named=True):
        out.append(
            PriceOverride(
                id=row["id"],
                company_id=row["company_id"],
                provider=row["provider"],
                pattern=stored_model_pattern(row["model_pattern"]),
                effective_from=row["effective_from"],
                effective_to=row["effective_to"],
                per_mtok={c: money(row[_OVERRIDE_FIELDS[c]]) for c in CATEGORIES},
                web_search_per_thousand=money(row["web_search_per_thousand"]),
            )
        )
    return out


def load_price_data() -> None:
    """Load genai-prices' bundled price data now. It loads at the first price looked up
    (25-45 ms here); a command with a core to spare while it waits for something else can
    take that off its critical path. Looked up through the public `calc_price`, whatever the
    answer: the library keeps its snapshot loader to itself."""
    library_price("anthropic", "claude-sonnet-4-5", date(2025, 10, 1), None)


@lru_cache(maxsize=4096)
def library_price(provider: str, model: str, day: date, service_tier: str | None) -> Any:
    """genai-prices' result for the model on the day (None when it does not know it)."""
    context = {"service_tier": service_tier} if service_tier in {"priority", "flex"} else None
    try:
        return calc_price(
            Usage(input_tokens=0, output_tokens=0),
            model,
            provider_id=provider,
            genai_request_timestamp=datetime.combine(day, time(), tzinfo=UTC),
            price_context=context,  # type: ignore[arg-type]
        )
    except LookupError:
        return None


def _split(value: Any) -> tuple[Decimal | None, int | None, Decimal | None]:
    """(base, first tier start, first tier price) of a flat or tiered price."""
    if value is None:
        return None, None, None
    if isinstance(value, TieredPrices):
        tier = value.tiers[0] if value.tiers else None
        return value.base, (tier.start if tier else None), (tier.price if tier else None)
    return Decimal(value), None, None


def resolve(
    company_id: int,
    provider: str,
    model: str,
    day: date,
    service_tier: str | None,
    overrides: list[PriceOverride],
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "company_id": company_id,
        "provider": provider,
        "model": model,
        "day": day,
        "service_tier": service_tier,
    }
    matching = [o for o in overrides if o.applies(company_id, provider, model, day)]
    # the company's own override before one for every company, then the later start, then
    # the later written
    override = (
        max(matching, key=lambda o: (o.company_id is not None, o.effective_from, o.id))
        if matching
        else None
    )
    library = library_price(provider, model, day, service_tier)
    if library is None and override is None:
        return {
            **row,
            "price_status": "unpriced",
            "unpriced_reason": f"no price for model {model!r} of provider {provider!r}",
        }
    sources = []
    matched = model
    if library is not None:
        matched = library.model.id
        sources.append(f"{LIBRARY} ({library.provider.id}/{library.model.id})")
        prices = library.model_price
        for category in CATEGORIES:
            base, start, tier = _split(getattr(prices, _GENAI_FIELDS[category], None))
            row[f"{category}_per_mtok"] = base
            row[f"{category}_tier_start"] = start
            row[f"{category}_tier_per_mtok"] = tier
        web = getattr(prices, "web_searches_kcount", None)
        row["web_search_per_thousand"] = None if web is None else Decimal(web)
    if override is not None:
        sources.insert(0, f"override #{override.id}")
        for category in CATEGORIES:
            price = override.per_mtok[category]
            if price is not None:  # an override is flat: it replaces tiers too
                row[f"{category}_per_mtok"] = price
                row[f"{category}_tier_start"] = None
                row[f"{category}_tier_per_mtok"] = None
        if override.web_search_per_thousand is not None:
            row["web_search_per_thousand"] = override.web_search_per_thousand
    row["fast_multiplier"] = next(
        (m for prefix, m in FAST_MODE_MULTIPLIERS.items() if matched.startswith(prefix)), None
    )
    for category in CATEGORIES:
        row[f"{category}_pusd"] = picodollars_per_token(row.get(f"{category}_per_mtok"))
        row[f"{category}_tier_pusd"] = picodollars_per_token(row.get(f"{category}_tier_per_mtok"))
    web = row.get("web_search_per_thousand")
    row["web_search_pusd"] = None if web is None else int(Decimal(web) * PICO / 1000)
    multiplier = row["fast_multiplier"]
    row["fast_multiplier_milli"] = None if multiplier is None else int(multiplier * 1000)
    return {
        **row,
        "price_status": "priced",
        "price_source": " + ".join(sources),
        "matched_model": matched,
    }


DECIMAL_COLUMNS = [name for name, kind in PRICE_SCHEMA.items() if kind == PRICE]


def price_table(keys: pl.DataFrame, overrides: list[PriceOverride]) -> pl.DataFrame:
    """Unit prices for each distinct key row (company_id, provider, model, day,
    service_tier)."""
    rows = [
        resolve(k["company_id"], k["provider"], k["model"], k["day"], k["service_tier"], overrides)
        for k in keys.iter_rows(named=True)
    ]
    # Decimal prices go in as text and are cast (the same truncation to 12 places): a frame
    # built from Decimal objects makes polars import numpy, 0.1 s of a short report that
    # prices a few days.
    for row in rows:
        for name in DECIMAL_COLUMNS:
            if row.get(name) is not None:
                row[name] = format(Decimal(row[name]), "f")
    as_text = {**PRICE_SCHEMA, **dict.fromkeys(DECIMAL_COLUMNS, pl.String)}
    return pl.DataFrame(rows, schema=as_text).cast(PRICE_SCHEMA)
