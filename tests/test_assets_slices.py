"""A long range is materialised a slice of days at a time (TALLY_MATERIALIZE_SLICE_EVENTS),
so that memory follows the slice, not the range: the cut itself, and the rows, metadata and
checks of a sliced run against a run of the whole range in one piece."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import psycopg
import pytest

from assets.attribution.assets import attribution_daily, usage_attributed
from assets.costs.assets import cost_daily
from assets.pricing.assets import usage_priced
from assets.slices import read_ahead, window_slices
from assets.sources import token_usage_events
from ingestion.adapters.pigeon import read_pigeon
from ingestion.demo.board import demo_sessions, write_demo_board
from ingestion.demo.corpus import generate_corpus
from ingestion.settings import get_settings
from ingestion.warehouse.base import open_warehouse
from ingestion.workgraph.ingest import ingest_work_graph
from pipelines.resources import build_resources
from schemas.warehouse import ATTRIBUTION_DAILY, COST_DAILY, USAGE_ATTRIBUTED, USAGE_PRICED
from tests.ingest_helpers import ingest_corpus

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")
ASSETS = [token_usage_events, usage_priced, cost_daily, usage_attributed, attribution_daily]
WRITTEN = ["usage_priced", "cost_daily", "usage_attributed", "attribution_daily"]
FIRST, END = date(2026, 10, 1), date(2026, 10, 31)  # the corpus' 30 days
D = [date(2026, 1, 1) + timedelta(days=n) for n in range(8)]


def test_slices_cover_every_day_in_order_within_the_budget():
    rows = {D[0]: 40, D[1]: 50, D[3]: 30, D[4]: 20, D[5]: 70}
    slices = window_slices(D[0], D[7], rows, max_rows=100)
    assert slices == [(D[0], D[3]), (D[3], D[5]), (D[5], D[7])]
    held = [sum(rows.get(d, 0) for d in rows if a <= d < b) for a, b in slices]
    assert held == [90, 50, 70]


def test_a_day_over_the_budget_is_a_slice_of_its_own():
    rows = {D[0]: 10, D[1]: 500, D[2]: 10}
    assert window_slices(D[0], D[3], rows, max_rows=100) == [
        (D[0], D[1]), (D[1], D[2]), (D[2], D[3])]  # fmt: skip


def test_a_window_without_rows_is_one_slice_that_still_clears_it():
    assert window_slices(D[0], D[7], {}, max_rows=100) == [(D[0], D[7])]
    assert window_slices(D[0], D[1], {D[0]: 10**9}, max_rows=1) == [(D[0], D[1])]


def test_reading_ahead_keeps_the_order_and_reads_at_most_one_slice_ahead():
    import threading

    slices = [(D[n], D[n + 1]) for n in range(5)]
    read: list[date] = []
    allowed = [threading.Semaphore(0) for _ in slices]

    def reader(first: date, end: date) -> str:
        allowed[D.index(first)].acquire(timeout=5)  # slice n may be read once n-1 is handed out
        read.append(first)
        return f"{first}..{end}"

    allowed[0].release()
    seen = []
    for n, (window, result) in enumerate(read_ahead(slices, reader)):
        assert result == f"{window[0]}..{window[1]}" and window == slices[n]
        assert len(read) <= n + 2  # this slice, and perhaps the next one
        seen.append(window)
        if n + 1 < len(slices):
            allowed[n + 1].release()
    assert seen == slices and read == [first for first, _ in slices]


def test_a_failed_read_ahead_fails_the_slice_it_was_for():
    def reader(first: date, end: date) -> date:
        if first == D[2]:
            raise RuntimeError("the store went away")
        return first

    got = []
    with pytest.raises(RuntimeError, match="went away"):
        for _, result in read_ahead([(D[n], D[n + 1]) for n in range(4)], reader):
            got.append(result)
    assert got == [D[0], D[1]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return generate_corpus(tmp_path_factory.mktemp("corpus"), megabytes=2, seed=31, days=30)


@pytest.fixture
def stores(tally_env, db_url, conninfo, corpus, tmp_path):
    ingest_corpus(conninfo, corpus.root)
    board = tmp_path / "pigeon.db"
    write_demo_board(board, demo_sessions(conninfo))
    ingest_work_graph(conninfo, read_pigeon(board), company="local", source="pigeon",
                      location=str(board), arguments={})  # fmt: skip
    warehouse_url = f"duckdb://{tmp_path / 'warehouse.duckdb'}"
    return build_resources(database_url=db_url, warehouse_url=warehouse_url), warehouse_url


def materialize_range(resources, monkeypatch, slice_events: int) -> dg.ExecuteInProcessResult:
    monkeypatch.setenv("TALLY_MATERIALIZE_SLICE_EVENTS", str(slice_events))
    get_settings.cache_clear()
    result = dg.materialize(
        ASSETS,
        selection=WRITTEN,
        resources=resources,
        tags={
            "dagster/asset_partition_range_start": FIRST.isoformat(),
            "dagster/asset_partition_range_end": (END - timedelta(days=1)).isoformat(),
        },
    )
    assert result.success
    return result


def tables(warehouse_url: str) -> dict[str, object]:
    warehouse = open_warehouse(warehouse_url)
    keys = {
        USAGE_PRICED: ["event_id"],
        USAGE_ATTRIBUTED: ["event_id"],
        COST_DAILY: ["day", "source", "project", "agent", "session_key", "model"],
        ATTRIBUTION_DAILY: [c for c, kind in ATTRIBUTION_DAILY.columns if kind == "text"]
        + ["day", "issue_id"],
    }
    return {
        table.name: warehouse.read_window(table, FIRST, END).sort(key, nulls_last=True)
        for table, key in keys.items()
    }


def metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, object]]:
    return {
        event.asset_key.to_user_string(): {
            key: value.value for key, value in event.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }


def test_a_range_in_slices_writes_what_one_piece_writes(stores, monkeypatch, conninfo):
    resources, warehouse_url = stores
    with psycopg.connect(conninfo) as conn:
        (events,) = conn.execute("SELECT count(*) FROM token_usage_events").fetchone()
    whole = materialize_range(resources, monkeypatch, slice_events=10 * events)
    in_one_piece = tables(warehouse_url)
    assert in_one_piece["usage_attributed"]["issue_id"].drop_nulls().len() > 0
    assert {m["slices"] for m in metadata(whole).values()} == {1}

    sliced = materialize_range(resources, monkeypatch, slice_events=events // 8)
    in_slices = tables(warehouse_url)
    for name, frame in in_one_piece.items():
        assert in_slices[name].equals(frame), name
    assert all(m["slices"] >= 8 for m in metadata(sliced).values())
    checks = sliced.get_asset_check_evaluations()
    assert len(checks) == len(whole.get_asset_check_evaluations()) == 9
    assert all(check.passed for check in checks), [c for c in checks if not c.passed]
    # what the UI shows of the run is that of the whole range, not of its last slice
    for asset, shown in metadata(whole).items():
        for key in ("dagster/row_count", "cost_usd", "by_signal", "pricing_status"):
            if key in shown:
                assert metadata(sliced)[asset][key] == shown[key], (asset, key)
        assert metadata(sliced)[asset]["preview"].count("\n") == shown["preview"].count("\n")
