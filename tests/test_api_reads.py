"""Reads over the warehouse: usage written through the API, materialised in-process, read
back by company, agent and issue; a budget policy's status."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import dagster as dg
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from assets.attribution.assets import attribution_daily, usage_attributed
from assets.costs.assets import cost_daily
from assets.pricing.assets import usage_priced
from assets.sources import token_usage_events
from pipelines.resources import build_resources
from tests.api_helpers import Keys, auth, post, usage_record

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")
TODAY = datetime.now(UTC).date()


@pytest.fixture
def world(tally_env, db_url, conninfo, tmp_path):
    warehouse_url = f"duckdb://{tmp_path / 'warehouse.duckdb'}"
    app = create_app(db_url, warehouse_url)
    with TestClient(app) as client:
        keys = Keys.create(conninfo)
        with psycopg.connect(conninfo) as conn:
            company = conn.execute("SELECT id FROM companies WHERE slug = 'acme'").fetchone()[0]
            conn.execute(
                """INSERT INTO issues (company_id, source, external_id, identifier, number,
                       title, status) VALUES (%s, 'paperclip', 'uuid-1', 'PAP-1', 1, 'Invoice',
                       'in_progress')""",
                (company,),
            )
        at = f"{TODAY.isoformat()}T00:{{:02d}}:00Z"
        eng = [usage_record(n, occurred_at=at.format(n)) for n in range(4)]
        ops = [usage_record(10 + n, session="s-2", occurred_at=at.format(10 + n),
                            source="codex" if n else "api") for n in range(2)]  # fmt: skip
        assert post(client, "/v1/usage-events", keys.agent, eng).json()["accepted"] == 4
        assert post(client, "/v1/usage-events", keys.other_agent, ops).json()["accepted"] == 2
        hint = {
            "hint_id": "h-1",
            "issue": "PAP-1",
            "session_id": "s-1",
            "valid_from": f"{TODAY.isoformat()}T00:00:00Z",
        }
        assert post(client, "/v1/attribution-hints", keys.agent, [hint]).json()["accepted"] == 1
        other = post(client, "/v1/usage-events", keys.other_board, [usage_record(99)])
        assert other.status_code == 403  # a board key does not ingest
        result = dg.materialize(
            [token_usage_events, usage_priced, cost_daily, usage_attributed, attribution_daily],
            selection=["usage_priced", "cost_daily", "usage_attributed", "attribution_daily"],
            resources=build_resources(database_url=db_url, warehouse_url=warehouse_url),
            partition_key=TODAY.isoformat(),
        )
        assert result.success
        yield client, keys


def test_costs_by_agent_are_scoped_to_the_company_and_the_agent(world):
    client, keys = world
    by_agent = client.get("/v1/costs?group_by=agent", headers=auth(keys.board)).json()
    assert {row["agent"]: row["requests"] for row in by_agent} == {"eng": 4, "ops": 2}
    assert all(Decimal(row["cost_usd"]) > 0 for row in by_agent)
    own = client.get("/v1/costs?group_by=day", headers=auth(keys.agent)).json()
    assert [row["requests"] for row in own] == [4]
    assert client.get("/v1/costs?agent=ops", headers=auth(keys.agent)).status_code == 403
    assert client.get("/v1/costs", headers=auth(keys.other_board)).json() == []
    since = client.get(f"/v1/costs?since={TODAY}&until={TODAY}", headers=auth(keys.service))
    assert sum(row["requests"] for row in since.json()) == 6
    backwards = client.get(f"/v1/costs?since={TODAY}&until=2000-01-01", headers=auth(keys.board))
    assert backwards.status_code == 422
    # one tool's requests: by day, and by issue
    for group_by in ("day", "issue"):
        codex = client.get(f"/v1/costs?group_by={group_by}&source=codex", headers=auth(keys.board))
        assert [row["requests"] for row in codex.json()] == [1], group_by
    for start, weekday in (("sunday", 7), ("monday", 1)):
        (week,) = client.get(f"/v1/costs?group_by=week&week_start={start}",
                             headers=auth(keys.board)).json()  # fmt: skip
        assert date.fromisoformat(week["week"]).isoweekday() == weekday
        assert week["requests"] == 6
    tools = client.get("/v1/costs?group_by=source", headers=auth(keys.board)).json()
    assert {row["source"]: row["requests"] for row in tools} == {"api": 5, "codex": 1}
    # no tool reported a cost: zero, as fixed-point text (str() of it is "0E-12")
    shown = client.get("/v1/costs?group_by=source&mode=display", headers=auth(keys.board))
    assert {(row["cost_usd"], row["billed_cost_usd"]) for row in shown.json()} == {
        ("0.000000000000", "0.000000000000")}  # fmt: skip
    api = client.get("/v1/costs?group_by=agent&source=api", headers=auth(keys.board)).json()
    assert {row["agent"]: row["requests"] for row in api} == {"eng": 4, "ops": 1}


def test_issue_cost_and_costs_by_issue(world):
    client, keys = world
    cost = client.get("/v1/issues/PAP-1/cost", headers=auth(keys.board)).json()
    assert cost["requests"] == 4 and cost["share_explicit"] == 1.0
    assert cost["issue_external_id"] == "uuid-1" and cost["first_day"] == TODAY.isoformat()
    by_issue = client.get("/v1/costs?group_by=issue", headers=auth(keys.board)).json()
    assert by_issue[0]["issue_identifier"] == "PAP-1"
    assert by_issue[-1]["issue_title"] == "(unattributed)" and by_issue[-1]["requests"] == 2
    # the project and agent filters hold for work items too (they were ignored for them)
    ops = client.get("/v1/costs?group_by=issue&agent=ops", headers=auth(keys.board)).json()
    assert [(row["issue_title"], row["requests"]) for row in ops] == [("(unattributed)", 2)]
    eng = client.get("/v1/costs?group_by=goal&agent=eng", headers=auth(keys.board)).json()
    assert sum(row["requests"] for row in eng) == 4
    nowhere = client.get("/v1/costs?group_by=issue&project=none", headers=auth(keys.board))
    assert nowhere.json() == []
    assert client.get("/v1/issues/PAP-9/cost", headers=auth(keys.board)).status_code == 404
    assert client.get("/v1/issues/PAP-1/cost", headers=auth(keys.other_board)).status_code == 404
    assert client.get("/v1/issues/PAP-1/cost", headers=auth(keys.agent)).status_code == 403


def test_budget_status(world):
    client, keys = world
    board = auth(keys.board)
    spent = Decimal(
        client.get("/v1/costs?group_by=agent&agent=eng", headers=board).json()[0]["cost_usd"]
    )

    def status(**policy) -> dict:
        created = client.post("/v1/budget-policies", headers=board, json=policy).json()
        return client.get(f"/v1/budget-policies/{created['id']}/status", headers=board).json()

    exceeded = status(
        scope_type="agent", scope="eng", window_kind="day", metric="usd", amount=str(spent / 2)
    )
    assert exceeded["status"] == "exceeded" and Decimal(exceeded["spent"]) == spent
    assert exceeded["percent"] == pytest.approx(200.0)
    roomy = status(
        scope_type="company", window_kind="calendar_month", metric="tokens", amount="1000000000"
    )
    assert roomy["status"] == "ok" and Decimal(roomy["spent"]) == 6 * (10 + 100 + 1000)
    assert (
        roomy["projected_exhaustion_at"] is None
        or roomy["projected_exhaustion_at"] > (roomy["window_start"])
    )
    warned = status(
        scope_type="issue",
        scope="PAP-1",
        window_kind="lifetime",
        metric="tokens",
        amount=str(4 * 1110 + 100),
        warn_percent=50,
    )
    assert warned["status"] == "warning" and warned["window_start"] is None
    runs = status(
        scope_type="company", window_kind="rolling_days", window_days=7, metric="runs", amount="10"
    )
    assert runs["spent"] == "0" and runs["status"] == "ok"


def test_the_status_of_every_policy_that_binds_the_caller(world):
    """What a hook checks before each prompt and tool call without knowing policy ids: for
    an agent key, its own agent's policies and the company's; never another agent's."""
    client, keys = world
    board = auth(keys.board)

    def policy(**fields) -> int:
        made = client.post("/v1/budget-policies", headers=board, json={
            "window_kind": "lifetime", "metric": "tokens", "amount": "1", **fields})  # fmt: skip
        assert made.status_code == 201, made.text
        return int(made.json()["id"])

    own = policy(scope_type="agent", scope="eng", hard_stop=True)
    company = policy(scope_type="company", amount="1000000000")
    others = policy(scope_type="agent", scope="ops")
    off = policy(scope_type="agent", scope="eng", active=False)
    listed = client.get("/v1/budget-status", headers=auth(keys.agent)).json()
    assert [(s["policy_id"], s["status"], s["hard_stop"]) for s in listed] == [
        (own, "exceeded", True), (company, "ok", False)]  # fmt: skip
    everything = client.get("/v1/budget-status", headers=board).json()
    assert [s["policy_id"] for s in everything] == [own, company, others]
    assert off not in [s["policy_id"] for s in everything]
    company_read = client.get(f"/v1/budget-policies/{company}/status", headers=auth(keys.agent))
    assert company_read.status_code == 200
    refused = client.get(f"/v1/budget-policies/{others}/status", headers=auth(keys.agent))
    assert refused.status_code == 403
    assert client.get("/v1/budget-status", headers=auth(keys.other_board)).json() == []


def test_costs_name_the_days_the_warehouse_is_behind_on(world):
    client, keys = world
    fresh = client.get("/v1/costs", headers=auth(keys.board))
    assert fresh.status_code == 200 and "X-Tally-Stale-Days" not in fresh.headers
    late = usage_record(50, occurred_at=f"{TODAY.isoformat()}T01:00:00Z")
    assert post(client, "/v1/usage-events", keys.agent, [late]).json()["accepted"] == 1
    for group_by in ("day", "issue"):
        behind = client.get(f"/v1/costs?group_by={group_by}", headers=auth(keys.board))
        assert behind.headers["X-Tally-Stale-Days"] == TODAY.isoformat(), group_by
    # the rows stay the warehouse's until it is materialised again
    by_day = client.get("/v1/costs?group_by=day", headers=auth(keys.board)).json()
    assert sum(row["requests"] for row in by_day) == 6
    earlier = client.get("/v1/costs?until=2000-01-01", headers=auth(keys.board))
    assert "X-Tally-Stale-Days" not in earlier.headers


def test_budget_status_and_issue_cost_name_the_days_the_warehouse_is_behind_on(world):
    """Both read the warehouse as last materialised: a board watching a budget saw the spend
    of requests not yet materialised left out without a word."""
    client, keys = world
    board = auth(keys.board)

    def reads() -> list:
        policy = client.post("/v1/budget-policies", headers=board, json={
            "scope_type": "company", "window_kind": "calendar_month", "metric": "usd",
            "amount": "100"})  # fmt: skip
        runs = client.post("/v1/budget-policies", headers=board, json={
            "scope_type": "company", "window_kind": "day", "metric": "runs",
            "amount": "10"})  # fmt: skip
        return [
            client.get(f"/v1/budget-policies/{policy.json()['id']}/status", headers=board),
            client.get("/v1/issues/PAP-1/cost", headers=board),
            client.get(f"/v1/budget-policies/{runs.json()['id']}/status", headers=board),
            client.get("/v1/budget-status", headers=board),
        ]

    assert all(read.status_code == 200 for read in reads())
    assert all("X-Tally-Stale-Days" not in read.headers for read in reads())
    late = usage_record(50, occurred_at=f"{TODAY.isoformat()}T01:00:00Z")
    assert post(client, "/v1/usage-events", keys.agent, [late]).json()["accepted"] == 1
    budget, issue, runs, every = reads()
    assert budget.headers["X-Tally-Stale-Days"] == TODAY.isoformat()
    assert every.headers["X-Tally-Stale-Days"] == TODAY.isoformat()  # one check, all windows
    assert issue.headers["X-Tally-Stale-Days"] == TODAY.isoformat()
    assert "X-Tally-Stale-Days" not in runs.headers  # runs are counted in the store


def test_costs_name_the_days_no_partition_holds(world, monkeypatch):
    """A request dated after today (a clock set ahead) is stored, but no partition holds its
    day: the rows leave it out, and the response says so."""
    client, keys = world
    assert (
        "X-Tally-Days-Outside-Partitions"
        not in client.get("/v1/costs", headers=auth(keys.board)).headers
    )
    ahead = TODAY + timedelta(days=40)
    record = usage_record(51, occurred_at=f"{ahead.isoformat()}T01:00:00Z")
    assert post(client, "/v1/usage-events", keys.agent, [record]).json()["accepted"] == 1
    # both checks read the per-day totals over the API's pooled connections: a connection
    # of its own for each took a fifth of a cost read's time

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cost read opened a connection of its own")

    with monkeypatch.context() as patched:
        patched.setattr(psycopg, "connect", refused)
        response = client.get("/v1/costs", headers=auth(keys.board))
    assert response.headers["X-Tally-Days-Outside-Partitions"] == ahead.isoformat()
    assert sum(row["requests"] for row in response.json()) == 6  # the warehouse's rows
    within = client.get(f"/v1/costs?until={TODAY.isoformat()}", headers=auth(keys.board))
    assert "X-Tally-Days-Outside-Partitions" not in within.headers


def test_a_request_posted_under_two_sources_is_called_out(world, db_url, conninfo, tmp_path):
    """A hook that posts a transcript's requests as `api` while tally reads the transcript
    stores each request twice, and every report counts it twice, without a word."""
    client, keys = world
    at = f"{TODAY.isoformat()}T00:00:00Z"
    again = usage_record(0, occurred_at=at, source="claude_code")  # msg-0 / req-0, as `api`
    assert post(client, "/v1/usage-events", keys.agent, [again]).json()["accepted"] == 1
    result = dg.materialize(
        [token_usage_events, usage_priced], selection=["usage_priced"],
        resources=build_resources(database_url=db_url,
                                  warehouse_url=f"duckdb://{tmp_path / 'w.duckdb'}"),
        partition_key=TODAY.isoformat(),
    )  # fmt: skip
    (check,) = [c for c in result.get_asset_check_evaluations()
                if c.check_name == "one_source_per_request"]  # fmt: skip
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["requests_counted_twice"].value == 1
    assert check.metadata["tokens_counted_twice"].value == 10 + 100 + 1000
    # the operator's fix: list the copies, then drop them (the claude_code copy stays)
    from typer.testing import CliRunner

    from pipelines.cli.main import app

    listed = CliRunner().invoke(app, ["db", "drop-posted-copies", "--dry-run"])
    assert listed.exit_code == 0 and "1 posted copies would be dropped" in listed.output
    assert f"{TODAY}: 1 requests posted as api, also held as claude_code" in listed.output
    dropped = CliRunner().invoke(app, ["db", "drop-posted-copies"])
    assert dropped.exit_code == 0 and "dropped 1 posted copies" in dropped.output
    again = CliRunner().invoke(app, ["db", "drop-posted-copies"])
    assert "no posted request is held by another source too" in again.output
    with psycopg.connect(conninfo) as conn:
        kept = conn.execute("SELECT source FROM token_usage_events WHERE message_id = 'msg-0'")
        assert kept.fetchall() == [("claude_code",)]
