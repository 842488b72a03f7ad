"""`tally ui` end to end: the webserver and daemon start on 127.0.0.1 with run storage in
PostgreSQL, a partition's materialisation launched through the GraphQL API succeeds with its
checks passing, a backfill of a range from the UI is one run, and Ctrl-C stops everything."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from ingestion.demo.corpus import generate_corpus
from ingestion.postgres.embedded import free_port
from tests.ingest_helpers import ingest_corpus

pytestmark = pytest.mark.slow

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
RUN = """
query Run($id: ID!) {
  runOrError(runId: $id) {
    ... on Run {
      status
      eventConnection(afterCursor: null) {
        events {
          __typename
          ... on AssetCheckEvaluationEvent { evaluation { checkName success } }
          ... on MaterializationEvent { assetKey { path } }
        }
      }
    }
  }
}"""


def graphql(port: int, query: str, variables: dict) -> dict:
    response = httpx.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": query, "variables": variables},
        timeout=30,
    )
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


BACKFILL = """mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  }
}"""
BACKFILL_STATUS = """query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status runs { status tags { key value } } }
  }
}"""
DAILY_ASSETS = ["usage_priced", "cost_daily", "usage_attributed", "attribution_daily"]


def backfill_and_wait(port: int, days: list[str]) -> dict:
    """Backfill the daily assets over `days` as the UI's "Materialize" dialog does (the
    daemon's backfill loop makes its runs), and wait for it to end."""
    launched = graphql(port, BACKFILL, {"params": {
        "assetSelection": [{"path": [key]} for key in DAILY_ASSETS],
        "partitionNames": days, "fromFailure": False,
    }})["launchPartitionBackfill"]  # fmt: skip
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        backfill = graphql(port, BACKFILL_STATUS, {"id": launched["backfillId"]})
        backfill = backfill["partitionBackfillOrError"]
        ended = backfill["runs"] and all(
            run["status"] in {"SUCCESS", "FAILURE", "CANCELED"} for run in backfill["runs"]
        )
        if backfill["status"] not in {"REQUESTED", "CANCELING"} and ended:
            return backfill
        time.sleep(2)
    return backfill


def wait_for_webserver(
    process: subprocess.Popen[bytes], port: int, log: Path | None = None
) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            output = log.read_text(errors="replace")[-3000:] if log else ""
            pytest.fail(f"tally ui exited with {process.returncode}: {output}")
        time.sleep(0.5)
    pytest.fail("the webserver did not answer within 120 s")


def launch_and_wait(port: int, tags: dict[str, str]) -> dict:
    """Launch `daily_costs_job` with `tags` through the GraphQL API, as the UI and the daemon
    do, and wait for the run to end."""
    launched = graphql(port, LAUNCH, {"params": {
        "selector": {"repositoryLocationName": "pipelines.definitions",
                     "repositoryName": "__repository__", "jobName": "daily_costs_job"},
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        "runConfigData": {},
    }})["launchRun"]  # fmt: skip
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        run = graphql(port, RUN, {"id": run_id})["runOrError"]
        if run["status"] in {"SUCCESS", "FAILURE", "CANCELED"}:
            return run
        time.sleep(1)
    return run


def test_ui_launches_a_partition_and_stops_on_ctrl_c(db_url, conninfo, pg_server_url, tmp_path):
    corpus = generate_corpus(tmp_path / "corpus", megabytes=1, seed=8, days=5)
    ingest_corpus(conninfo, corpus.root)
    day = "2026-10-03"
    dagster_db = f"tally_dagster_{uuid.uuid4().hex[:8]}"
    port = free_port()
    log = tmp_path / "ui.log"
    env = {
        **os.environ,
        "TALLY_DATABASE_URL": db_url,
        "TALLY_DATA_DIR": str(tmp_path / "data"),
        "TALLY_DAGSTER_DATABASE": dagster_db,
        "TALLY_CLAUDE_DIR": str(corpus.claude_dir),
        "TALLY_CODEX_DIR": str(corpus.codex_dir),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli.main", "ui", "--port", str(port)],
        # a file, not a pipe: nobody reads a pipe while the test runs, and once its buffer
        # is full the webserver and daemon block writing their logs and cannot stop
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        # as a shell's background job starts it: SIGINT ignored. Ctrl-C must stop it anyway.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    try:
        wait_for_webserver(process, port, log)
        said = " ".join(log.read_text(errors="replace").split())
        assert "automation stopped: agent_logs_sensor, hourly_ingest, hourly_costs" in said

        run = launch_and_wait(port, {"dagster/partition": day})
        assert run["status"] == "SUCCESS", run
        events = run["eventConnection"]["events"]
        materialized = {
            "/".join(e["assetKey"]["path"])
            for e in events
            if e["__typename"] == "MaterializationEvent"
        }
        assert materialized == {
            "usage_priced",
            "cost_daily",
            "usage_attributed",
            "attribution_daily",
        }
        checks = {
            e["evaluation"]["checkName"]: e["evaluation"]["success"]
            for e in events
            if e["__typename"] == "AssetCheckEvaluationEvent"
        }
        assert set(checks) == {
            "schema",
            "tokens_reconcile",
            "unpriced_models",
            "one_source_per_request",
            "totals_match_usage_priced",
            "every_priced_event_attributed",
            "totals_match_usage_attributed",
        }
        assert all(checks.values()), checks
        # a range, tagged as the hourly schedule's catch-up runs are: one run, every day
        catch_up = launch_and_wait(port, {"dagster/asset_partition_range_start": "2026-10-01",
                                          "dagster/asset_partition_range_end": "2026-10-04",
                                          "tally/catch-up": "true"})  # fmt: skip
        assert catch_up["status"] == "SUCCESS", catch_up
        # a backfill from the UI over a range: one run for all of it (single-run policy)
        backfill = backfill_and_wait(port, ["2026-10-01", "2026-10-02", "2026-10-03"])
        assert backfill["status"] == "COMPLETED_SUCCESS", backfill
        (only,) = backfill["runs"]
        tags = {tag["key"]: tag["value"] for tag in only["tags"]}
        assert (only["status"], tags["dagster/asset_partition_range_start"],
                tags["dagster/asset_partition_range_end"]) == (
            "SUCCESS", "2026-10-01", "2026-10-03")  # fmt: skip
        admin = make_url(pg_server_url).set(drivername="postgresql").render_as_string(False)
        stored = make_url(admin).set(database=dagster_db).render_as_string(False)
        with psycopg.connect(stored) as conn:  # runs are kept in PostgreSQL
            assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] >= 1
    finally:
        # dagster dev leads a session of its own: what a failed stop leaves must go too
        family = _descendants(process.pid)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            _kill_all([process.pid, *family])
            pytest.fail("tally ui did not stop within 45 s of Ctrl-C")
        admin = make_url(pg_server_url).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dagster_db}" WITH (FORCE)')
    assert process.returncode is not None


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listed:
            return [int(child) for child in listed.read().split()]
    except FileNotFoundError:
        return []


def _descendants(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        children = _children(frontier.pop())
        found.extend(children)
        frontier.extend(children)
    return found


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_ui_stops_everything_when_terminated_and_refuses_a_busy_port(db_url, tmp_path):
    """A service manager's SIGTERM (or a closed terminal's SIGHUP) to `tally ui` alone stops
    the webserver and daemon too; a port already in use is refused before anything starts,
    and so is a second `tally ui` on the same Dagster instance (a second daemon)."""
    import socket

    dagster_db = f"tally_dagster_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "TALLY_DATABASE_URL": db_url, "TALLY_DATA_DIR": str(tmp_path),
           "TALLY_DAGSTER_DATABASE": dagster_db}  # fmt: skip
    command = [sys.executable, "-m", "pipelines.cli.main", "ui", "--port"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = subprocess.run(
            [*command, str(taken.getsockname()[1])], env=env, capture_output=True, text=True
        )
    assert busy.returncode == 2 and "is in use: choose another with --port" in busy.stderr

    port = free_port()
    process = subprocess.Popen([*command, str(port)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    family: list[int] = []
    try:
        wait_for_webserver(process, port)
        (dagster_dev,) = _children(process.pid)
        family = [dagster_dev, *_children(dagster_dev)]  # dagster dev leads its own group
        stored = make_url(db_url).set(drivername="postgresql", database=dagster_db)

        def heartbeats() -> int:
            with psycopg.connect(stored.render_as_string(False)) as conn:
                return conn.execute("SELECT count(*) FROM daemon_heartbeats").fetchone()[0]

        deadline = time.monotonic() + 60
        while not heartbeats() and time.monotonic() < deadline:
            time.sleep(0.5)
        second = subprocess.run([*command, str(free_port())], env=env, capture_output=True,
                                text=True, timeout=60)  # fmt: skip
        said = " ".join(second.stderr.split())
        assert second.returncode == 2, said
        assert "another `tally ui` is running on this Dagster instance" in said, said
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=45)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in family) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert [pid for pid in family if _alive(pid)] == []
        assert heartbeats() == 0  # stopped: the next `tally ui` may start at once
    finally:
        _kill_all([process.pid, *family, *_descendants(process.pid)])
        admin = make_url(db_url).set(drivername="postgresql", database="postgres")
        with psycopg.connect(admin.render_as_string(False), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dagster_db}" WITH (FORCE)')
