"""Sessions and runs written over the API are correlated like those ingested from files, for
every company that writes them, not only the one the settings name (TALLY_COMPANY): by the
hourly ingestion asset and by `tally ingest all`."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg
import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from assets.sources import token_usage_events
from pipelines.cli.main import app
from pipelines.resources import build_resources
from tests.api_helpers import Keys, post, usage_record

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")


def run_link(conninfo: str) -> tuple[str | None, str | None] | None:
    with psycopg.connect(conninfo) as conn:
        return conn.execute("""
            SELECT s.session_key, h.session_link FROM heartbeat_runs h
            JOIN companies c ON c.id = h.company_id
            LEFT JOIN agent_sessions s ON s.id = h.session_id
            WHERE c.slug = 'acme' AND h.external_id = 'run-1'""").fetchone()


def by_the_asset(db_url: str) -> None:
    result = dg.materialize([token_usage_events],
                            resources=build_resources(database_url=db_url))  # fmt: skip
    assert result.success


def by_the_cli(db_url: str) -> None:
    result = CliRunner().invoke(app, ["ingest", "all"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "correlation: 1 new link of sessions and runs" in result.output


@pytest.mark.parametrize("ingest", [by_the_asset, by_the_cli])
def test_a_run_an_api_company_posted_is_linked_to_its_session(
    ingest: Callable[[str], None], tally_env, db_url, conninfo, tmp_path
):
    warehouse_url = f"duckdb://{tmp_path / 'warehouse.duckdb'}"
    with TestClient(create_app(db_url, warehouse_url)) as client:
        keys = Keys.create(conninfo)  # company acme; the settings' company is another
        usage = [usage_record(n, session="cc-1", source="claude_code") for n in range(3)]
        assert post(client, "/v1/usage-events", keys.agent, usage).json()["accepted"] == 3
        run = {"run_id": "run-1", "status": "succeeded", "adapter_session_id": "cc-1",
               "started_at": "2026-11-01T09:59:00Z",
               "finished_at": "2026-11-01T10:30:00Z"}  # fmt: skip
        assert post(client, "/v1/heartbeat-runs", keys.agent, [run]).json()["accepted"] == 1
    assert run_link(conninfo) == (None, None)
    ingest(db_url)  # with no log file on disk
    assert run_link(conninfo) == ("cc-1", "adapter-session-id")


def test_a_subagent_posted_over_the_api_takes_its_root_sessions_project(
    tally_env, db_url, conninfo, tmp_path
):  # fmt: skip
    from ingestion.correlation import correlate

    warehouse_url = f"duckdb://{tmp_path / 'warehouse.duckdb'}"
    with TestClient(create_app(db_url, warehouse_url)) as client:
        keys = Keys.create(conninfo)
        usage = [usage_record(1, session="cc-1", source="claude_code"),
                 usage_record(2, session="cc-1:agent-a1", source="claude_code",
                              parent_session_id="cc-1")]  # fmt: skip
        assert post(client, "/v1/usage-events", keys.agent, usage).json()["accepted"] == 2
    with psycopg.connect(conninfo, autocommit=True) as conn:
        company = conn.execute("SELECT id FROM companies WHERE slug = 'acme'").fetchone()[0]
        project = conn.execute(
            """INSERT INTO projects (company_id, source, external_id, name)
               VALUES (%s, 'paperclip', 'p-1', 'billing') RETURNING id""", (company,)
        ).fetchone()[0]  # fmt: skip
        conn.execute("""UPDATE agent_sessions SET project_id = %s, project_link = 'workspace-path'
                        WHERE session_key = 'cc-1'""", (project,))  # fmt: skip
        correlate(conn, company)
        linked = conn.execute(
            """SELECT project_id, project_link FROM agent_sessions
               WHERE session_key = 'cc-1:agent-a1'"""
        ).fetchone()
    assert linked == (project, "root-session")
