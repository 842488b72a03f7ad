"""The canonical store restarting or going away: the API replaces the connections the server
dropped instead of failing a request on each, and while it cannot reach the store it answers
503 with Retry-After (what a client retries on) rather than 500, and comes back by itself."""

from __future__ import annotations

import time

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from api.app import APPLICATION_NAME, create_app
from tests.api_helpers import Keys, auth, count, usage_record


def _drop_api_connections(admin: psycopg.Connection, database: str) -> int:
    """What a server restart does to the API's pooled connections (once they are gone:
    termination is a signal the backends act on in their own time)."""
    ours = "FROM pg_stat_activity WHERE datname = %s AND application_name = %s"
    dropped = admin.execute(
        f"SELECT pg_terminate_backend(pid) {ours}", (database, APPLICATION_NAME)
    )
    terminated = len(dropped.fetchall())
    deadline = time.monotonic() + 10
    while admin.execute(f"SELECT count(*) {ours}", (database, APPLICATION_NAME)).fetchone()[0]:
        assert time.monotonic() < deadline, "the terminated backends did not end"
        time.sleep(0.05)
    return terminated


def test_the_api_rides_out_a_restart_and_answers_503_while_the_store_is_away(
    tally_env, db_url, conninfo, pg_server_url, tmp_path
):
    database = make_url(db_url).database
    admin_info = make_url(pg_server_url).set(drivername="postgresql")
    admin = psycopg.connect(admin_info.render_as_string(hide_password=False), autocommit=True)
    app = create_app(db_url, f"duckdb://{tmp_path / 'w.duckdb'}", pool_timeout=1.0)
    with admin, TestClient(app) as client:
        keys = Keys.create(conninfo)

        def post(n: int) -> object:
            records = {"records": [usage_record(n, session="s-outage")]}
            return client.post("/v1/usage-events", json=records, headers=auth(keys.service))

        assert post(1).status_code == 200
        assert _drop_api_connections(admin, database) >= 1
        # every pooled connection the server dropped used to fail one request with a 500
        answers = [post(n) for n in (2, 3, 4)]
        assert [a.status_code for a in answers] == [200, 200, 200], answers[0].text

        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        try:
            _drop_api_connections(admin, database)
            away = post(5)
            assert away.status_code == 503
            assert away.headers["Retry-After"] == "10"
            assert away.json()["error"] == "unavailable"
            assert "127.0.0.1" not in away.text  # nothing of the server's address
        finally:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        deadline = time.monotonic() + 30
        answer = post(5)
        while answer.status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
            answer = post(5)
        assert answer.status_code == 200
    assert count(conninfo, "token_usage_events") == 5
