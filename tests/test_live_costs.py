"""Reports over a warehouse with some days swapped for rows priced live (the CLI end to end,
live rows equal to materialised ones, is in test_cli_costs.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import polars as pl
import pytest

from assets.costs.live import day_ranges
from ingestion.reports.blocks import billing_blocks
from ingestion.reports.costs import LiveDays, cost_report, unpriced_usage
from ingestion.warehouse.base import open_warehouse
from schemas.warehouse import COST_DAILY, TOKEN_NAMES, USAGE_PRICED

D1, D2, D3 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)
UTC_US = pl.Datetime("us", "UTC")


def daily_row(day: date, model: str, requests: int, cost: str) -> dict:
    at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    money = Decimal(cost)
    return {"day": day, "company_id": 1, "source": "claude_code", "project": "web",
            "agent": None, "session_key": f"s-{day}", "model": model, "requests": requests,
            **dict.fromkeys(TOKEN_NAMES, 10 * requests), "web_search_requests": 0,
            "computed_cost_usd": money, "reported_cost_usd": Decimal(0), "cost_usd": money,
            "billed_cost_usd": money, "notional_cost_usd": money, "subscription_covered": False,
            "unpriced_requests": 0,
            "unpriced_tokens": 0, "first_at": at, "last_at": at}  # fmt: skip


def daily(*rows: dict) -> pl.DataFrame:
    schema = {"day": pl.Date, "first_at": UTC_US, "last_at": UTC_US, "agent": pl.String,
              **{c: pl.Decimal(38, 12) for c in ("computed_cost_usd", "reported_cost_usd",
                                                 "cost_usd", "billed_cost_usd",
                                                 "notional_cost_usd")}}  # fmt: skip
    return pl.DataFrame(list(rows), schema_overrides=schema).select(COST_DAILY.column_names)


def priced(day: date, model: str, status: str = "priced") -> pl.DataFrame:
    at = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
    row = {name: None for name in USAGE_PRICED.column_names}
    row.update(day=day, event_id=1, company_id=1, source="claude_code", session_key="s",
               root_session_key="s", occurred_at=at, provider="anthropic", model=model,
               pricing_status=status, **dict.fromkeys(TOKEN_NAMES, 5), web_search_requests=0,
               computed_cost_usd=Decimal("0.5"), cost_usd=Decimal("0.5"))  # fmt: skip
    return pl.DataFrame([row], infer_schema_length=None).select(USAGE_PRICED.column_names)


@pytest.fixture
def warehouse(tmp_path):
    store = open_warehouse(f"duckdb://{tmp_path / 'warehouse.duckdb'}")
    store.replace_window(COST_DAILY, D1, D3, daily(daily_row(D1, "opus", 2, "1.5"),
                                                   daily_row(D2, "opus", 3, "2")))  # fmt: skip
    store.replace_window(USAGE_PRICED, D1, D3, pl.concat([priced(D1, "opus"),
                                                          priced(D2, "opus")]))  # fmt: skip
    return store


def test_day_ranges_join_consecutive_days_up_to_the_event_budget():
    some = dict.fromkeys([D1, D2, D3, date(2026, 10, 7)], 10)
    assert day_ranges([D3, D1, D2, date(2026, 10, 7), D1], some, max_rows=100) == [
        (D1, date(2026, 10, 4)),
        (date(2026, 10, 7), date(2026, 10, 8)),
    ]
    assert day_ranges([], {}, max_rows=100) == []
    fortnight = [date(2026, 10, d) for d in range(1, 16)]
    busy = {**dict.fromkeys(fortnight, 100), date(2026, 10, 9): 5000}
    assert day_ranges(fortnight, busy, max_rows=700) == [
        (D1, date(2026, 10, 8)),
        (date(2026, 10, 8), date(2026, 10, 9)),
        (date(2026, 10, 9), date(2026, 10, 10)),  # a busy day: alone
        (date(2026, 10, 10), date(2026, 10, 16)),
    ]


def test_live_days_without_their_priced_requests_refuse_a_report_that_needs_them(warehouse):
    live = LiveDays(days=(D3,), usage_priced=None, cost_daily=daily(daily_row(D3, "opus", 1, "1")))
    assert [r["day"] for r in cost_report(warehouse, "day", live=live)][-1] == "2026-10-03"
    with pytest.raises(ValueError, match="daily rollup"):
        billing_blocks(warehouse, "auto", None, None, live=live)


def test_live_days_replace_the_warehouse_rows_of_their_days(warehouse):
    # D2's usage was deleted since it was materialised; D3 is new
    live = LiveDays(
        days=(D2, D3),
        usage_priced=priced(D3, "mystery", status="unpriced"),
        cost_daily=daily(daily_row(D3, "sonnet", 4, "0.25")),
    )
    by_day = {r["day"]: r for r in cost_report(warehouse, "day", live=live)}
    assert set(by_day) == {"2026-10-01", "2026-10-03"}
    assert by_day["2026-10-03"]["requests"] == 4
    assert by_day["2026-10-03"]["cost_usd"] == Decimal("0.25")
    assert by_day["2026-10-01"]["cost_usd"] == Decimal("1.5")
    month = cost_report(warehouse, "month", live=live)
    assert [(r["month"], r["requests"]) for r in month] == [("2026-10", 6)]
    assert [b.requests for b in billing_blocks(warehouse, "auto", None, None, live=live)] == [1, 1]
    assert [r["model"] for r in unpriced_usage(warehouse, None, None, live)] == ["mystery"]
    # without an overlay the warehouse is read as it is
    assert {r["day"] for r in cost_report(warehouse, "day")} == {"2026-10-01", "2026-10-02"}
    assert unpriced_usage(warehouse, None, None) == []


def test_live_days_with_no_usage_at_all(warehouse):
    empty = LiveDays(
        days=(D1, D2),
        usage_priced=pl.DataFrame(schema=dict.fromkeys(USAGE_PRICED.column_names, pl.Null)),
        cost_daily=pl.DataFrame(schema=dict.fromkeys(COST_DAILY.column_names, pl.Null)),
    )
    assert cost_report(warehouse, "day", live=empty) == []
    assert billing_blocks(warehouse, "auto", None, None, live=empty) == []


def test_weeks_start_on_sunday_as_ccusage_s_or_on_monday(tmp_path):
    """Finance that closes ISO weeks read weeks from Sunday only: 2026-10-04 (a Sunday) and
    2026-10-05 (a Monday) were one week, 2026-10-11 (a Sunday) and 2026-10-12 two."""
    store = open_warehouse(f"duckdb://{tmp_path / 'warehouse.duckdb'}")
    days = [date(2026, 10, 4), date(2026, 10, 5), date(2026, 10, 11), date(2026, 10, 12)]
    store.replace_window(COST_DAILY, days[0], date(2026, 10, 13),
                         daily(*(daily_row(day, "opus", 1, "1") for day in days)))  # fmt: skip

    def weeks(**start: str) -> dict[str, int]:
        return {r["week"]: r["requests"] for r in cost_report(store, "week", **start)}

    assert weeks() == weeks(week_start="sunday") == {"2026-10-04": 2, "2026-10-11": 2}
    assert weeks(week_start="monday") == {"2026-09-28": 1, "2026-10-05": 2, "2026-10-12": 1}
