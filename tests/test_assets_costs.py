"""Pricing and cost assets materialised in-process with real resources: the test's own
PostgreSQL and a temporary DuckDB warehouse."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import dagster as dg
import psycopg
import pytest

from assets.costs.assets import cost_daily
from assets.pricing.assets import usage_priced
from assets.sources import token_usage_events
from ingestion.demo.corpus import generate_corpus
from ingestion.store import CanonicalStore
from ingestion.warehouse.base import open_warehouse
from pipelines.resources import build_resources
from schemas.warehouse import COST_DAILY, USAGE_PRICED
from tests.ingest_helpers import ingest_corpus

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")
ASSETS = [token_usage_events, usage_priced, cost_daily]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return generate_corpus(tmp_path_factory.mktemp("corpus"), megabytes=2, seed=31, days=30)


@pytest.fixture
def stores(db_url, conninfo, corpus, tmp_path):
    ingest_corpus(conninfo, corpus.root)
    warehouse_url = f"duckdb://{tmp_path / 'warehouse.duckdb'}"
    return build_resources(database_url=db_url, warehouse_url=warehouse_url), warehouse_url


def materialize(resources, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        ASSETS, selection=["usage_priced", "cost_daily"], resources=resources, **kwargs
    )


def test_a_partition_materialises_with_its_checks_passing(stores, conninfo):
    resources, warehouse_url = stores
    result = materialize(resources, partition_key="2026-10-07")
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} == {
        "schema",
        "tokens_reconcile",
        "unpriced_models",
        "one_source_per_request",
        "totals_match_usage_priced",
    }
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
    warehouse = open_warehouse(warehouse_url)
    priced = warehouse.read_window(USAGE_PRICED, date(2026, 10, 7), date(2026, 10, 8))
    with psycopg.connect(conninfo) as conn:
        (expected,) = conn.execute(
            "SELECT count(*) FROM token_usage_events WHERE occurred_at >= '2026-10-07' "
            "AND occurred_at < '2026-10-08'"
        ).fetchone()
    assert priced.height == expected > 0
    assert set(priced["pricing_status"]) == {"priced"}
    daily = warehouse.read_window(COST_DAILY, date(2026, 10, 7), date(2026, 10, 8))
    assert daily["cost_usd"].sum() == priced["cost_usd"].sum() > 0


def test_a_30_day_range_is_one_run_and_rematerialising_gives_identical_rows(stores):
    resources, warehouse_url = stores
    result = materialize(
        resources,
        tags={
            "dagster/asset_partition_range_start": "2026-10-01",
            "dagster/asset_partition_range_end": "2026-10-30",
        },
    )
    assert result.success
    materialized = result.get_asset_materialization_events()
    assert {e.asset_key.to_user_string() for e in materialized} == {"usage_priced", "cost_daily"}
    warehouse = open_warehouse(warehouse_url)
    stored_days = [
        d
        for d in CanonicalStore(resources["canonical_store"].database_url).usage_days()
        if date(2026, 10, 1) <= d <= date(2026, 10, 30)
    ]
    assert warehouse.days_with_data(USAGE_PRICED) == stored_days
    assert warehouse.days_with_data(COST_DAILY) == stored_days
    before = warehouse.read_window(USAGE_PRICED, date(2026, 10, 1), date(2026, 10, 31))
    assert materialize(resources, partition_key="2026-10-12").success
    after = warehouse.read_window(USAGE_PRICED, date(2026, 10, 1), date(2026, 10, 31))
    key = ["day", "event_id"]
    assert after.sort(key).equals(before.sort(key))


def test_a_price_override_changes_only_rematerialised_windows(stores, conninfo):
    resources, warehouse_url = stores
    for day in ("2026-10-07", "2026-10-08"):
        assert materialize(resources, partition_key=day).success
    warehouse = open_warehouse(warehouse_url)

    def day_cost(day: date) -> Decimal:
        window = warehouse.read_window(COST_DAILY, day, date(day.year, day.month, day.day + 1))
        return window["cost_usd"].sum()

    first, second = day_cost(date(2026, 10, 7)), day_cost(date(2026, 10, 8))
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            """INSERT INTO price_overrides (provider, model_pattern, effective_from,
                   input_per_mtok, output_per_mtok, cache_read_per_mtok,
                   cache_write_5m_per_mtok, cache_write_1h_per_mtok)
               VALUES ('anthropic', 'claude-.*', '2026-10-01', 100, 100, 100, 100, 100)"""
        )
    assert materialize(resources, partition_key="2026-10-08").success
    assert day_cost(date(2026, 10, 7)) == first  # not re-materialised: unchanged
    assert day_cost(date(2026, 10, 8)) > second
    priced = warehouse.read_window(USAGE_PRICED, date(2026, 10, 8), date(2026, 10, 9))
    claude = priced.filter(priced["provider"] == "anthropic")
    assert all(source.startswith("override #") for source in claude["price_source"])


def test_the_metadata_preview_keeps_one_row_per_row():
    import polars as pl

    from assets.reporting import preview

    frame = pl.DataFrame({"project": ["/srv/a|b", "/srv/line\nbreak", None], "requests": [1, 2, 3],
                          "cost_usd": ["0", "0.00000008", "2.5"]}).with_columns(
        pl.col("cost_usd").cast(pl.Decimal(38, 12)))  # fmt: skip
    lines = preview(frame).value.splitlines()
    assert lines[0] == "| project | requests | cost_usd |" and len(lines) == 2 + frame.height
    # decimals in fixed point: str() of a zero cost is "0E-12"
    assert lines[2:] == ["| /srv/a\\|b | 1 | 0.000000000000 |",
                         "| /srv/line break | 2 | 0.000000080000 |",
                         "|  | 3 | 2.500000000000 |"]  # fmt: skip


def test_an_ingest_during_the_materialisation_does_not_fail_the_reconciliation(
    stores, conninfo, tmp_path, monkeypatch
):
    """Agents write over HTTP and the sensor ingests while today's partition materialises:
    an event committed after the window was read is not in this materialisation (the next
    one prices it; reports name the day as behind), and must not fail the blocking check,
    which skipped the costs and the attribution of the day."""
    import assets.pricing.assets as pricing_assets
    from ingestion.sources import CLAUDE_CODE
    from tests.builders import assistant, usage, write_jsonl
    from tests.ingest_helpers import ingest

    real_price_usage = pricing_assets.price_usage
    late = tmp_path / "late" / "p" / "s-late.jsonl"
    write_jsonl(late, [assistant("m-late", "r-late", "2026-10-07T12:00:00Z", usage())])

    def price_usage_after_an_ingest(usage_frame, prices):
        assert ingest(conninfo, CLAUDE_CODE, late.parents[1]).events_new == 1
        return real_price_usage(usage_frame, prices)

    monkeypatch.setattr(pricing_assets, "price_usage", price_usage_after_an_ingest)
    resources, _ = stores
    result = materialize(resources, partition_key="2026-10-07")
    assert result.success
    failed = [c for c in result.get_asset_check_evaluations() if not c.passed]
    assert failed == []
