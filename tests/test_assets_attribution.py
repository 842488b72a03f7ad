"""Attribution assets materialised in-process on real stores: a Pigeon board, a Claude Code
session in its repository, an explicit hint; every tier decides the events it should."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import dagster as dg
import orjson
import psycopg
import pytest
from typer.testing import CliRunner

from assets.attribution.assets import attribution_daily, usage_attributed
from assets.costs.assets import cost_daily
from assets.pricing.assets import usage_priced
from assets.sources import token_usage_events
from ingestion.adapters.pigeon import read_pigeon
from ingestion.sources import CLAUDE_CODE
from ingestion.warehouse.base import open_warehouse
from ingestion.workgraph.ingest import ingest_work_graph
from pipelines.cli.main import app
from pipelines.resources import build_resources
from schemas.warehouse import ATTRIBUTION_DAILY, USAGE_ATTRIBUTED
from tests.builders import assistant, usage, user_text, write_jsonl
from tests.ingest_helpers import ingest
from tests.pigeon_fixture import build_pigeon_db

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")
runner = CliRunner()
ASSETS = [token_usage_events, usage_priced, cost_daily, usage_attributed, attribution_daily]
DAY = date(2026, 11, 2)

# message id -> (time, expected issue number or None, expected signal, expected reason)
TURNS = {
    "m-0905": ("09:05", 1, "session-recent-touch", None),  # card-1 touched 09:00 by mcp-1
    "m-0930": ("09:30", 1, "single-in-progress", None),  # the agent moved card-1 at 09:10
    "m-1030": ("10:30", 1, "single-in-progress", None),  # card-2 is nobody's: not a rival
    "m-1210": ("12:10", None, "unattributed", "stale"),  # card-1 done at 12:00
    "m-1212": ("12:12", 2, "session-recent-touch", None),  # its own tool call names card #2
    "m-1230": ("12:30", 2, "explicit", None),  # a hint: card-2 from 12:20
}


@pytest.fixture
def stores(tally_env, db_url, conninfo, tmp_path):
    claude = tmp_path / "claude" / "projects"
    # the prompt that opened the session, a minute before the MCP server's first action
    opening = {**user_text("2026-11-02T08:59:00.000Z", session="cc-1"), "cwd": "/work/shop/web"}
    read_card = [{"type": "tool_use", "id": "toolu_card", "name": "mcp__pigeon__getCard",
                  "input": {"cardNumber": 2}}]  # fmt: skip
    lines = [opening] + [assistant(message, f"r-{message}", f"2026-11-02T{at}:00.000Z", usage(),
                                   session="cc-1", cwd="/work/shop/web",
                                   content=read_card if message == "m-1212" else None)
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


def test_reports_by_issue_coverage_gap_and_events(stores, monkeypatch):
    from ingestion.reports.attribution import GAP_KEYS
    from ingestion.settings import get_settings

    resources, warehouse_url = stores
    assert dg.materialize(
        ASSETS, selection=["usage_priced", "cost_daily", "usage_attributed", "attribution_daily"],
        resources=resources, partition_key=DAY.isoformat(),
    ).success  # fmt: skip
    monkeypatch.setenv("TALLY_WAREHOUSE_URL", warehouse_url)
    get_settings.cache_clear()

    def report(*args: str):
        result = runner.invoke(app, ["report", *args, "--format", "json"])
        assert result.exit_code == 0, result.output
        return orjson.loads(result.stdout)

    by_issue = report("costs", "--by", "issue")
    card_1 = next(row for row in by_issue if row["issue_number"] == 1)
    assert card_1["issue_external_id"] == "card-1" and card_1["project"] == "Shop"
    assert card_1["requests"] == 3
    assert card_1["share_single_in_progress"] + card_1["share_session_recent_touch"] == 1.0
    assert Decimal(card_1["cost_usd"]) > 0
    remainder = by_issue[-1]
    assert remainder["issue_external_id"] is None and remainder["issue_title"] == "(unattributed)"
    total = sum(Decimal(row["cost_usd"]) for row in by_issue)
    by_day = report("costs", "--by", "day")
    assert total == sum(Decimal(row["cost_usd"]) for row in by_day)

    by_project = report("costs", "--by", "project")
    assert {row["project"]: row["attributed_share"] for row in by_project}["Shop"] > 0

    events = report("attribution", "--by", "event")
    assert len(events) == len(TURNS) + 1
    keys = {"source", "session_id", "message_id", "request_id", "issue_external_id",
            "issue_number", "project", "signal", "confidence", "reason", "input_tokens",
            "output_tokens", "cache_read_tokens", "cache_write_5m_tokens",
            "cache_write_1h_tokens"}  # fmt: skip
    assert keys <= set(events[0])
    stale = next(e for e in events if e["message_id"] == "m-1210")
    assert (stale["signal"], stale["reason"], stale["issue_number"]) == (
        "unattributed", "stale", None)  # fmt: skip

    summary = report("attribution")
    assert summary["completed_issues"] == 1  # card-1, done on the day
    assert Decimal(summary["median_cost_per_completed_issue"]) == Decimal(card_1["cost_usd"])
    shares = summary["token_share"]
    assert 0 < shares["attributed"] < 1 and shares["unattributed"] > 0

    gap = report("attribution", "--by", "session")
    assert {row["session_id"]: row["reason"] for row in gap} == {
        "cc-1": "stale", "cc-2": "no-signal"}  # fmt: skip
    assert list(gap[0]) == list(GAP_KEYS)
    none = runner.invoke(app, ["report", "attribution", "--by", "session", "--since", "2030-01-01",
                               "--format", "csv"])  # fmt: skip
    assert none.stdout.splitlines() == [",".join(GAP_KEYS)]  # the header, for whatever reads it
    none = runner.invoke(app, ["report", "attribution", "--by", "session", "--since", "2030-01-01"])
    assert "no unattributed usage in the window" in none.stdout
    table = runner.invoke(app, ["report", "attribution"])
    assert "median cost per completed issue" in " ".join(table.output.split())
    # narrowed to one project's sessions (all of them here), to another project's (none), or
    # to a tool none of them used
    shop = report("attribution", "--by", "event", "--project", "Shop")
    assert shop == [e for e in events if e["session_project"] == "Shop"] and shop
    assert report("attribution", "--by", "event", "--project", "Elsewhere") == []
    assert report("attribution", "--by", "event", "--source", "codex") == []
    narrowed = {row["session_id"] for row in report("attribution", "--by", "session",
                                                    "--project", "Shop")}  # fmt: skip
    assert narrowed == {e["session_id"] for e in shop if e["signal"] == "unattributed"}
    assert report("attribution", "--source", "codex")["rows"] == []
