"""The upstream ledger beside tally's costs: the pure join of the two sides."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl

from ingestion.reports.reconcile import TALLY_COLUMNS, UPSTREAM_COLUMNS, reconcile

MONEY = pl.Decimal(38, 12)


def upstream(rows: list[tuple], key_type: pl.DataType = pl.String) -> pl.DataFrame:
    return pl.DataFrame(rows, orient="row", schema={
        "key": key_type, **dict.fromkeys(UPSTREAM_COLUMNS[:-1], pl.Int64),
        "upstream_cost_usd": MONEY})  # fmt: skip


def computed(rows: list[tuple], key_type: pl.DataType = pl.String) -> pl.DataFrame:
    return pl.DataFrame(rows, orient="row", schema={
        "key": key_type, **dict.fromkeys(TALLY_COLUMNS[:4], pl.Int64),
        **dict.fromkeys(TALLY_COLUMNS[4:], MONEY)})  # fmt: skip


def test_every_key_of_either_side_is_a_row_and_what_a_side_lacks_is_zero():
    rows = reconcile(
        upstream([("eng", 2, 2, 0, 10, 5, 20, Decimal("1.50")),
                  ("ops", 1, 1, 1, 0, 0, 0, Decimal("0"))]),
        computed([("eng", 9, 100, 1000, 200, Decimal("2"), Decimal("1.75"), Decimal("2")),
                  ("qa", 3, 1, 2, 3, Decimal("0.5"), Decimal("0"), Decimal("0.5"))]),
        "agent",
    )  # fmt: skip
    assert [r["agent"] for r in rows] == ["eng", "ops", "qa"]
    eng, ops, qa = rows
    assert eng["difference_usd"] == Decimal("0.25") and eng["upstream_runs"] == 2
    assert ops["requests"] == 0 and ops["billed_cost_usd"] == 0 and ops["difference_usd"] == 0
    assert ops["upstream_unpriced_entries"] == 1
    # usage a subscription covers is billed at nothing on both sides
    assert qa["upstream_cost_usd"] == 0 and qa["difference_usd"] == 0
    assert qa["notional_cost_usd"] == Decimal("0.5")


def test_days_are_dates_on_both_sides_and_an_empty_side_is_no_rows():
    day = date(2026, 11, 3)
    rows = reconcile(upstream([(day, 1, 1, 0, 1, 2, 3, Decimal("1.23"))], pl.Date),
                     computed([], pl.Date), "day")  # fmt: skip
    assert rows[0]["day"] == "2026-11-03" and rows[0]["difference_usd"] == Decimal("-1.23")
    assert reconcile(upstream([]), computed([]), "agent") == []
