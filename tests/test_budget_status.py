"""A budget policy's spend read from warehouse tables filled by the pure transforms."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import polars as pl
import psycopg

from assets.costs.transform import cost_daily
from assets.pricing.catalog import price_table
from assets.pricing.transform import price_keys, price_usage
from ingestion.reports.budgets import policy_status
from ingestion.warehouse.base import open_warehouse
from schemas.money import decimal_text
from schemas.warehouse import COST_DAILY, USAGE_PRICED

YESTERDAY, TODAY = date(2026, 10, 6), date(2026, 10, 7)


def _requests(times: list[datetime]) -> pl.DataFrame:
    """One Sonnet 4.5 request of 100,000 input tokens ($0.30) at each time."""
    n = len(times)
    usage = pl.DataFrame({
        "event_id": list(range(n)), "company_id": [1] * n, "source": ["claude_code"] * n,
        "session_key": ["s"] * n, "root_session_key": ["s"] * n, "project": ["web"] * n,
        "agent": ["eng"] * n, "occurred_at": times, "day": [t.date() for t in times],
        "provider": ["anthropic"] * n, "model": ["claude-sonnet-4-5-20250929"] * n,
        "input_tokens": [100_000] * n, "output_tokens": [0] * n, "reasoning_tokens": [0] * n,
        "cache_read_tokens": [0] * n, "cache_write_5m_tokens": [0] * n,
        "cache_write_1h_tokens": [0] * n, "web_search_requests": [0] * n,
        "service_tier": [None] * n, "speed": [None] * n, "reported_cost_usd": [None] * n,
    }, schema_overrides={"reported_cost_usd": pl.Decimal(38, 12), "service_tier": pl.String,
                         "speed": pl.String})  # fmt: skip
    return price_usage(usage, price_table(price_keys(usage), [])).select(USAGE_PRICED.column_names)


def test_a_rolling_window_counts_the_requests_of_its_first_day_by_their_times(tmp_path, conninfo):
    """The daily rollup holds whole days: a one-day rolling window read at noon once counted
    yesterday morning's request too, twice the spend it had."""
    times = [datetime(2026, 10, 6, 8, tzinfo=UTC), datetime(2026, 10, 6, 20, tzinfo=UTC),
             datetime(2026, 10, 7, 8, tzinfo=UTC)]  # fmt: skip
    priced = _requests(times)
    warehouse = open_warehouse(f"duckdb://{tmp_path / 'w.duckdb'}")
    warehouse.replace_window(USAGE_PRICED, YESTERDAY, TODAY, priced)
    warehouse.replace_window(COST_DAILY, YESTERDAY, TODAY, cost_daily(priced, frozenset()))
    policy = {"id": 1, "company_id": 1, "scope_type": "company", "scope_id": None,
              "metric": "usd", "amount": Decimal(100), "warn_percent": 80,
              "hard_stop": False}  # fmt: skip
    noon = datetime(2026, 10, 7, 12, tzinfo=UTC)

    def spent(now: datetime = noon, **window) -> Decimal:
        with psycopg.connect(conninfo) as conn:
            return Decimal(policy_status(conn, warehouse, {**policy, **window}, now)["spent"])

    # since yesterday noon: yesterday's 20:00 request and today's, not yesterday's 08:00
    assert spent(window_kind="rolling_days", window_days=1) == Decimal("0.6")
    assert spent(window_kind="rolling_days", window_days=2) == Decimal("0.9")
    assert spent(noon + timedelta(hours=9), window_kind="rolling_days", window_days=1) == Decimal(
        "0.3"
    )
    # windows that start at midnight read the rollup alone, as before
    assert spent(window_kind="day", window_days=None) == Decimal("0.3")
    assert spent(window_kind="calendar_month", window_days=None) == Decimal("0.9")
    assert spent(window_kind="lifetime", window_days=None) == Decimal("0.9")


def test_a_usd_budget_counts_what_is_billed_and_shows_the_notional_beside(tmp_path, conninfo):
    """Usage a subscription covers costs nothing more (Paperclip's budgets count billed cents
    only, subscription-included usage contributing 0): a USD budget counted it at API prices,
    so an agent whose Claude Code usage a Max plan covers was over its $0.50 budget at $0.90
    when it had been billed $0.30 (its Codex request)."""
    times = [datetime(2026, 10, 7, hour, tzinfo=UTC) for hour in (1, 2, 3)]
    priced = _requests(times).with_columns(
        source=pl.Series(["claude_code", "claude_code", "codex"])
    )
    warehouse = open_warehouse(f"duckdb://{tmp_path / 'w.duckdb'}")
    covered = frozenset({"claude_code"})
    warehouse.replace_window(USAGE_PRICED, TODAY, TODAY, priced)
    warehouse.replace_window(COST_DAILY, TODAY, TODAY, cost_daily(priced, covered))
    policy = {"id": 1, "company_id": 1, "scope_type": "agent", "scope_id": None,
              "metric": "usd", "amount": Decimal("0.5"), "warn_percent": 80, "hard_stop": True,
              "window_days": 1}  # fmt: skip
    noon = datetime(2026, 10, 7, 12, tzinfo=UTC)

    def status(subscription_sources: frozenset[str], **window) -> dict:
        with psycopg.connect(conninfo) as conn:
            conn.execute("INSERT INTO companies (id, slug, name) VALUES (1, 'acme', 'Acme') "
                         "ON CONFLICT DO NOTHING")  # fmt: skip
            agent = conn.execute(
                "INSERT INTO agents (company_id, source, external_id, name) "
                "VALUES (1, 'api', 'eng', 'eng') ON CONFLICT (company_id, source, external_id) "
                "DO UPDATE SET name = excluded.name RETURNING id"
            ).fetchone()[0]
            return policy_status(conn, warehouse, {**policy, "scope_id": agent, **window}, noon,
                                 subscription_sources=subscription_sources)  # fmt: skip

    for window in ({"window_kind": "day"}, {"window_kind": "rolling_days"}):
        billed = status(covered, **window)
        assert billed["spent"] == Decimal("0.3") and billed["status"] == "ok", window
        assert billed["notional_spent"] == Decimal("0.9")
        unsubscribed = status(frozenset(), **window)
        assert unsubscribed["spent"] == unsubscribed["notional_spent"] == Decimal("0.9")
        assert unsubscribed["status"] == "exceeded"
    # USD at the stored scale, as every amount the API shows: "0" was a window with no spend
    with psycopg.connect(conninfo) as conn:
        empty = policy_status(conn, warehouse, {**policy, "scope_type": "company",
                                                "window_kind": "day"},
                              datetime(2026, 11, 7, 12, tzinfo=UTC))  # fmt: skip
    assert (decimal_text(empty["spent"]), decimal_text(empty["notional_spent"])) == (
        "0.000000000000", "0.000000000000")  # fmt: skip
    assert decimal_text(status(covered, window_kind="day")["spent"]) == "0.300000000000"
