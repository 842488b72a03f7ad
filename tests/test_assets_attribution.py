"""Attribution assets materialised in-process on real stores: a Pigeon board, a Claude Code
session in its repository, an explicit hint; every tier decides the events it should."""

from __future__ import annotations

from datetime import date

import dagster as dg
import psycopg
import pytest

from assets.attribution.assets import attribution_daily, usage_attributed
from assets.costs.assets import cost_daily
from assets.pricing.assets import usage_priced
from assets.sources import token_usage_events
from ingestion.adapters.pigeon import read_pigeon
from ingestion.sources import CLAUDE_CODE
from ingestion.warehouse.base import open_warehouse
from ingestion.workgraph.ingest import ingest_work_graph
from pipelines.resources import build_resources
from schemas.warehouse import ATTRIBUTION_DAILY, USAGE_ATTRIBUTED
from tests.builders import assistant, usage, user_text, write_jsonl
from tests.ingest_helpers import ingest
from tests.pigeon_fixture import build_pigeon_db

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")
ASSETS = [token_usage_events, usage_priced, cost_daily, usage_attributed, attribution_daily]
DAY = date(2026, 11, 2)

# message id -> (time, expected issue number or None, expected signal, expected reason)
TURNS = {
    "m-0905": ("09:05", 1, "session-recent-touch", None),  # card-1 touched 09:00 by mcp-1
    "m-0930": ("09:30", 1, "single-in-progress", None),  # the agent moved card-1 at 09:10
    "m-1030": ("10:30", 1, "single-in-progress", None),  # card-2 is nobody's: not a rival
    "m-1210": ("12:10", None, "unattributed", "stale"),  # card-1 done at 12:00
    "m-1230": ("12:30", 2, "explicit", None),  # a hint: card-2 from 12:20
}


@pytest.fixture
def stores(tally_env, db_url, conninfo, tmp_path):
    claude = tmp_path / "claude" / "projects"
    # the prompt that opened the session, a minute before the MCP server's first action
    opening = {**user_text("2026-11-02T08:59:00.000Z", session="cc-1"), "cwd": "/work/shop/web"}
    lines = [opening] + [assistant(message, f"r-{message}", f"2026-11-02T{at}:00.000Z", usage(),
                       session="cc-1", cwd="/work/shop/web")
             for message, (at, *_rest) in TURNS.items()]  # fmt: skip
    write_jsonl(claude / "-work-shop-web" / "cc-1.jsonl", lines)
    ingest(conninfo, CLAUDE_CODE, claude)
    graph = read_pigeon(build_pigeon_db(tmp_path / "pigeon.db"))
    ingest_work_graph(conninfo, graph, company="local", source="pigeon", location="pigeon.db",
                      arguments={})  # fmt: skip
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            """INSERT INTO attribution_hints (company_id, hint_key, session_key, issue_id,
                   valid_from, origin)
               SELECT company_id, 'h-1', 'cc-1', id, '2026-11-02T12:20:00Z', 'api'
               FROM issues WHERE number = 2"""
        )
    warehouse_url = f"duckdb://{tmp_path / 'warehouse.duckdb'}"
    return build_resources(database_url=db_url, warehouse_url=warehouse_url), warehouse_url


def test_every_tier_decides_its_events(stores):
    resources, warehouse_url = stores
    result = dg.materialize(
        ASSETS, selection=["usage_priced", "usage_attributed", "attribution_daily"],
        resources=resources, partition_key=DAY.isoformat(),
    )  # fmt: skip
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
    warehouse = open_warehouse(warehouse_url)
    rows = warehouse.read_window(USAGE_ATTRIBUTED, DAY, date(2026, 11, 3))
    decided = {
        row["message_id"]: (row["issue_number"], row["signal"], row["reason"])
        for row in rows.iter_rows(named=True)
        if row["source"] == "claude_code"
    }
    assert decided == {m: (n, s, r) for m, (_, n, s, r) in TURNS.items()}
    explicit = rows.filter(rows["message_id"] == "m-1230").row(0, named=True)
    assert explicit["hint_id"].startswith("hint:") and explicit["confidence"] == 1.0
    assert explicit["issue_external_id"] == "card-2" and explicit["issue_project"] == "Shop"
    touch = rows.filter(rows["message_id"] == "m-0905").row(0, named=True)
    assert touch["touched_at"] is not None and touch["engine_version"]
    # Pigeon's rollup of cc-1 does not count (the transcript does); cc-2's does
    assert set(rows["root_session_key"]) == {"cc-1", "cc-2"}

    daily = warehouse.read_window(ATTRIBUTION_DAILY, DAY, date(2026, 11, 3))
    assert daily["requests"].sum() == rows.height
    assert daily["cost_usd"].sum() == rows["cost_usd"].sum()
    card_1 = daily.filter(daily["issue_number"] == 1)
    assert set(card_1["signal"]) == {"session-recent-touch", "single-in-progress"}
    assert card_1["requests"].sum() == 3


def test_rematerialising_a_window_replaces_it(stores):
    resources, warehouse_url = stores
    for _ in range(2):
        result = dg.materialize(
            ASSETS, selection=["usage_priced", "usage_attributed", "attribution_daily"],
            resources=resources, partition_key=DAY.isoformat(),
        )  # fmt: skip
        assert result.success
    rows = open_warehouse(warehouse_url).read_window(USAGE_ATTRIBUTED, DAY, date(2026, 11, 3))
    assert rows.height == len(TURNS) + 1  # cc-2's rollup
    assert rows["event_id"].n_unique() == rows.height
