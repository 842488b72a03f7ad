"""Pricing against hand computations from the providers' published prices (USD per million
tokens), and the vectorised transform against genai-prices' own per-request result."""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import polars as pl
import pytest
from genai_prices import Usage, calc_price

from assets.pricing.catalog import PriceOverride, price_table
from assets.pricing.transform import (
    KEYS,
    join_prices,
    picodollars_to_usd,
    price_keys,
    price_usage,
)

DAY = date(2026, 10, 3)
M = Decimal(1_000_000)


def usage_row(model: str, provider: str = "anthropic", **tokens) -> dict:
    row = {
        "company_id": 1,
        "provider": provider,
        "model": model,
        "day": tokens.pop("day", DAY),
        "service_tier": tokens.pop("service_tier", None),
        "speed": tokens.pop("speed", None),
        "reported_cost_usd": tokens.pop("reported", None),
        "input_tokens": 0,
        "output_tokens": 0,
        "reasoning_tokens": 0,
        "cache_read_tokens": 0,
        "cache_write_5m_tokens": 0,
        "cache_write_1h_tokens": 0,
        "web_search_requests": 0,
    }
    row.update(tokens)
    return row


def priced(rows: list[dict], overrides: list[PriceOverride] | None = None) -> pl.DataFrame:
    usage = pl.DataFrame(rows, schema_overrides={"reported_cost_usd": pl.Decimal(38, 12)})
    return price_usage(usage, price_table(price_keys(usage), overrides or []))


def cost(row: dict, overrides=None) -> Decimal:
    return priced([row], overrides)["cost_usd"][0]


@pytest.mark.parametrize(
    ("model", "tokens", "expected"),
    [
        # Sonnet 4: $3 in, $15 out, $3.75 5m write, $0.30 read (the reference's hand check)
        (
            "claude-sonnet-4-20250514",
            {
                "input_tokens": 100,
                "output_tokens": 50,
                "cache_write_5m_tokens": 25,
                "cache_read_tokens": 10,
            },
            Decimal("0.00114675"),
        ),
        # Opus 4.6: $5 in, $25 out, $10 1h write (2x input)
        (
            "claude-opus-4-6",
            {"input_tokens": 1000, "output_tokens": 100, "cache_write_1h_tokens": 2000},
            (1000 * 5 + 100 * 25 + 2000 * 10) / M,
        ),
        # Opus 4.1: $15 in, $75 out, $18.75 5m write, $1.50 read
        (
            "claude-opus-4-1-20250805",
            {
                "input_tokens": 200,
                "output_tokens": 300,
                "cache_write_5m_tokens": 4000,
                "cache_read_tokens": 50_000,
            },
            (200 * 15 + 300 * 75 + Decimal("18.75") * 4000 + Decimal("1.5") * 50_000) / M,
        ),
        # Haiku 4.5: $1 in, $5 out, $0.10 read, $2 1h write
        (
            "claude-haiku-4-5-20251001",
            {
                "input_tokens": 5000,
                "output_tokens": 700,
                "cache_read_tokens": 9000,
                "cache_write_1h_tokens": 100,
            },
            (5000 * 1 + 700 * 5 + Decimal("0.1") * 9000 + 100 * 2) / M,
        ),
        # Claude 3.5 Haiku (an older generation): $0.80 in, $4 out
        (
            "claude-3-5-haiku-20241022",
            {"input_tokens": 1000, "output_tokens": 100},
            (Decimal("0.8") * 1000 + 4 * 100) / M,
        ),
        # Sonnet 4.5 above 200k input: every token at $6 / $22.50 / $0.60
        (
            "claude-sonnet-4-5-20250929",
            {"input_tokens": 60_000, "cache_read_tokens": 150_000, "output_tokens": 1000},
            Decimal("0.4725"),
        ),
        # the same request just under the threshold stays at base prices
        (
            "claude-sonnet-4-5-20250929",
            {"input_tokens": 49_999, "cache_read_tokens": 150_000, "output_tokens": 1000},
            (49_999 * 3 + 150_000 * Decimal("0.3") + 1000 * 15) / M,
        ),
    ],
)
def test_claude_costs_equal_a_hand_computation(model, tokens, expected):
    assert cost(usage_row(model, **tokens)) == expected


def test_codex_cached_input_and_reasoning():
    # gpt-5: $1.25 in, $0.125 cached, $10 out; reasoning is inside output, not extra
    row = usage_row(
        "gpt-5-codex",
        provider="openai",
        input_tokens=2000,
        cache_read_tokens=8000,
        output_tokens=500,
        reasoning_tokens=300,
    )
    frame = priced([row])
    assert frame["cost_usd"][0] == (2000 * Decimal("1.25") + 8000 * Decimal("0.125") + 500 * 10) / M
    assert frame["matched_model"][0] == "gpt-5"


def test_an_unknown_model_is_unpriced_not_free():
    frame = priced([usage_row("claude-imaginary-9", input_tokens=10, output_tokens=10)])
    assert frame["pricing_status"][0] == "unpriced"
    assert frame["computed_cost_usd"][0] is None and frame["cost_usd"][0] is None
    assert "claude-imaginary-9" in frame["unpriced_reason"][0]


def test_a_tool_reported_cost_is_kept_beside_the_computed_one():
    known = usage_row(
        "claude-3-7-sonnet-20250219", input_tokens=1000, output_tokens=100, reported=Decimal("0.5")
    )
    unknown = usage_row("claude-imaginary-9", input_tokens=1, reported=Decimal("0.25"))
    frame = priced([known, unknown])
    assert frame["pricing_status"].to_list() == ["priced", "reported"]
    assert frame["computed_cost_usd"][0] == (1000 * 3 + 100 * 15) / M
    assert frame["reported_cost_usd"].to_list() == [Decimal("0.5"), Decimal("0.25")]
    # `cost_usd` is the auto cost: the reported one wherever the tool reported one
    assert frame["cost_usd"].to_list() == [Decimal("0.5"), Decimal("0.25")]


def test_an_override_applies_from_its_effective_date():
    override = PriceOverride(
        id=7,
        company_id=None,
        provider="anthropic",
        pattern=re.compile(r"claude-opus-4-6.*"),
        effective_from=date(2026, 10, 5),
        effective_to=None,
        per_mtok={
            "input": Decimal("4"),
            "output": None,
            "cache_read": None,
            "cache_write_5m": None,
            "cache_write_1h": None,
        },
        web_search_per_thousand=None,
    )
    before = usage_row(
        "claude-opus-4-6", input_tokens=1000, output_tokens=10, day=date(2026, 10, 4)
    )
    after = usage_row("claude-opus-4-6", input_tokens=1000, output_tokens=10, day=date(2026, 10, 5))
    frame = priced([before, after], [override])
    assert frame["cost_usd"].to_list() == [(1000 * 5 + 10 * 25) / M, (1000 * 4 + 10 * 25) / M]
    assert frame["price_source"][1].startswith("override #7")


def test_a_companys_own_override_wins_over_one_for_every_company():
    """A company's negotiated price (set through the API, for that company) stands against
    an override for every company (set with `tally prices set`), even a newer one: the more
    specific override wins, then the later start, then the later one written."""

    def override(id_: int, company: int | None, start: date, price: str) -> PriceOverride:
        per_mtok = dict.fromkeys(("output", "cache_read", "cache_write_5m", "cache_write_1h"))
        return PriceOverride(id=id_, company_id=company, provider="anthropic",
                             pattern=re.compile(r"claude-opus-4-6"), effective_from=start,
                             effective_to=None, per_mtok={"input": Decimal(price), **per_mtok},
                             web_search_per_thousand=None)  # fmt: skip

    own = override(1, 1, date(2026, 10, 1), "2")
    everyone = override(2, None, date(2026, 10, 3), "4")
    later_own = override(3, 1, date(2026, 10, 4), "3")
    row = usage_row("claude-opus-4-6", input_tokens=1_000_000, day=date(2026, 10, 3))
    assert cost(row, [own, everyone]) == Decimal(2)
    assert cost({**row, "company_id": 2}, [own, everyone]) == Decimal(4)  # not its override
    assert cost({**row, "day": date(2026, 10, 4)}, [own, everyone, later_own]) == Decimal(3)


def test_override_patterns_cannot_stall_pricing():
    """RE2 matches in time linear in the name: under Python's backtracking `re`, `(a+)+$`
    against 64 a's and a `!` would take 2^64 steps. In a child process with a time limit, so
    that a regression fails instead of hanging the suite."""
    import subprocess
    import sys

    from ingestion.model_patterns import InvalidModelPattern, compile_model_pattern

    check = (
        "from ingestion.model_patterns import stored_model_pattern\n"
        "assert stored_model_pattern('(a+)+$').fullmatch('a' * 64 + '!') is None\n"
        "assert stored_model_pattern('(claude-.*)*-4').fullmatch('claude-' * 40 + 'x') is None"
    )
    subprocess.run([sys.executable, "-c", check], check=True, timeout=60)
    assert compile_model_pattern(r"gpt-5(\.\d+)?-codex").fullmatch("gpt-5.2-codex")
    for refused in (r"claude(?!-haiku).*", r"(a)\1", "(["):
        with pytest.raises(InvalidModelPattern, match="RE2 syntax"):
            compile_model_pattern(refused)


def test_fast_mode_and_web_search():
    fast = usage_row("claude-opus-4-6", input_tokens=1000, output_tokens=100, speed="fast")
    search = usage_row("claude-sonnet-4-5-20250929", input_tokens=10, web_search_requests=2)
    frame = priced([fast, search])
    assert frame["cost_usd"][0] == 6 * (1000 * 5 + 100 * 25) / M
    assert frame["web_search_cost_usd"][1] == Decimal("0.02")
    assert frame["cost_usd"][1] == Decimal("0.02") + 10 * 3 / M


def test_vectorised_prices_equal_genai_prices_request_by_request():
    rng = random.Random(4)
    models = [
        "claude-opus-4-6",
        "claude-sonnet-4-5-20250929",
        "claude-haiku-4-5-20251001",
        "claude-sonnet-4-20250514",
        "claude-opus-4-1-20250805",
    ]
    rows = []
    for _ in range(300):
        rows.append(
            usage_row(
                rng.choice(models),
                input_tokens=rng.randint(0, 5000),
                output_tokens=rng.randint(0, 4000),
                cache_read_tokens=rng.randint(0, 260_000),
                cache_write_5m_tokens=rng.choice([0, rng.randint(0, 9000)]),
                cache_write_1h_tokens=rng.choice([0, rng.randint(0, 9000)]),
            )
        )
    frame = priced(rows)
    for row, got in zip(rows, frame["cost_usd"], strict=True):
        writes = row["cache_write_5m_tokens"] + row["cache_write_1h_tokens"]
        expected = calc_price(
            Usage(
                input_tokens=row["input_tokens"] + row["cache_read_tokens"] + writes,
                cache_read_tokens=row["cache_read_tokens"],
                cache_write_tokens=writes,
                cache_write_1h_tokens=row["cache_write_1h_tokens"],
                output_tokens=row["output_tokens"],
            ),
            row["model"],
            provider_id="anthropic",
            genai_request_timestamp=datetime(2026, 10, 3, tzinfo=UTC),
        ).total_price
        assert got == expected, row


def test_picodollars_become_exact_decimal_dollars() -> None:
    """Picodollars as USD must equal dividing by 10^12, for every sign, the Int64 extremes,
    nulls and a frame split into several chunks."""
    values = [None, 0, 1, -5, 123_456_789_012_345, 2**63 - 1, -(2**63)]
    chunked = pl.concat(
        [pl.Series("cost", values[:3], dtype=pl.Int64), pl.Series("cost", values[3:])],
        rechunk=False,
    )
    usd = pl.select(picodollars_to_usd(pl.lit(chunked))).to_series()
    assert usd.dtype == pl.Decimal(38, 12)
    assert usd.name == "cost"
    expected = [None if v is None else Decimal(v).scaleb(-12) for v in values]
    assert usd.to_list() == expected
    empty = pl.DataFrame({"cost": []}, schema={"cost": pl.Int64})
    assert empty.select(picodollars_to_usd(pl.col("cost"))).schema["cost"] == pl.Decimal(38, 12)


def test_the_price_join_is_the_join_on_the_key_columns() -> None:
    """join_prices joins on one integer code of the key: it must give what the join on the
    five columns gives (nulls equal), row for row and in the events' order, including keys the
    price table lacks in any one column and null service tiers."""
    rng = random.Random(7)
    companies, providers = [1, 2, None], ["anthropic", "openai", None]
    models, tiers = ["opus", "sonnet", "gpt-5", "imaginary"], [None, "priority", "flex"]
    days = [date(2026, 10, d) for d in (1, 2, 3, 30)]

    def key() -> dict:
        return {"company_id": rng.choice(companies), "provider": rng.choice(providers),
                "model": rng.choice(models), "day": rng.choice(days),
                "service_tier": rng.choice(tiers)}  # fmt: skip

    schema = {"company_id": pl.Int64, "provider": pl.String, "model": pl.String,
              "day": pl.Date, "service_tier": pl.String}  # fmt: skip
    for _ in range(20):
        events = pl.DataFrame([key() for _ in range(300)], schema=schema).with_row_index("n")
        prices = (
            pl.DataFrame([key() for _ in range(rng.randint(0, 25))], schema=schema)
            .unique()
            .with_row_index("price_row")
        )
        expected = events.join(prices, on=KEYS, how="left", nulls_equal=True,
                               maintain_order="left")  # fmt: skip
        got = join_prices(events, prices)
        assert got.select(expected.columns).equals(expected)
        assert got.get_column("n").to_list() == list(range(300))
