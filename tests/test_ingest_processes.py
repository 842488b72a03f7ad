"""Real processes: a `tally ingest` killed with SIGKILL at random instants, and two ingests
running at once, end in exactly the rows of one clean run."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from ingestion.demo.corpus import generate_corpus
from tests.ingest_helpers import snapshot
from tests.test_ingest_store import snapshot_of_clean_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return generate_corpus(tmp_path_factory.mktemp("corpus"), megabytes=4, seed=5)


def start_ingest(
    db_url: str, corpus, source: str = "claude-code", parallel: bool = False
) -> subprocess.Popen:
    env = {
        **os.environ,
        "TALLY_INGEST_WORKERS": "2" if parallel else "0",
        "TALLY_INGEST_PARALLEL_MIN_BYTES": "0",
        "TALLY_DATABASE_URL": db_url,
        "TALLY_INGEST_BATCH_ROWS": "150",
        "TALLY_CLAUDE_DIR": str(corpus.claude_dir),
        "TALLY_CODEX_DIR": str(corpus.codex_dir),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli.main", "ingest", source],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_until_loading(conninfo: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while time.monotonic() < deadline and process.poll() is None:
            running = conn.execute(
                "SELECT count(*) FROM ingestion_runs WHERE status = 'running'"
            ).fetchone()
            if running and running[0]:
                return
            time.sleep(0.02)


def run_to_end(db_url: str, corpus) -> None:
    for source in ("claude-code", "codex"):
        process = start_ingest(db_url, corpus, source)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()


def test_sigkill_at_random_instants_then_rerun_equals_a_clean_run(
    db_url, conninfo, corpus, pg_server_url
):
    clean = snapshot_of_clean_run(pg_server_url, corpus)
    rng = random.Random(3)
    killed = 0
    for attempt in range(4):
        process = start_ingest(db_url, corpus, parallel=attempt % 2 == 1)
        wait_until_loading(conninfo, process)
        time.sleep(rng.uniform(0, 0.4))  # somewhere inside the run
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.wait(timeout=60)
    assert killed, "the ingest finished before it could be killed: use a larger corpus"
    run_to_end(db_url, corpus)
    assert snapshot(conninfo) == clean
    with psycopg.connect(conninfo) as conn:
        statuses = {row[0] for row in conn.execute("SELECT status FROM ingestion_runs")}
    assert "interrupted" in statuses and "running" not in statuses


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as listing:
            found.update(int(child) for child in listing.read().split())
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as status:
            return status.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_a_killed_ingest_leaves_no_worker_and_no_open_transaction(db_url, conninfo, corpus):
    """Forked parse workers inherit the run's PostgreSQL sockets: when the run was killed
    they kept its connections, and so its open transaction and locks, alive for as long as
    they lived, which was for ever (they wait on their task queue). The next run hung."""
    process = start_ingest(db_url, corpus, parallel=True)
    children: set[int] = set()
    deadline = time.monotonic() + 30
    while not children and process.poll() is None and time.monotonic() < deadline:
        children = _children(process.pid)
        time.sleep(0.01)
    assert children, "the ingest ended before its workers started: use a larger corpus"
    wait_until_loading(conninfo, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    try:
        deadline = time.monotonic() + 10
        with psycopg.connect(conninfo, autocommit=True) as conn:
            while time.monotonic() < deadline:
                left = [pid for pid in children if _alive(pid)]
                (sessions,) = conn.execute(
                    """SELECT count(*) FROM pg_stat_activity
                       WHERE datname = current_database() AND pid <> pg_backend_pid()
                         AND backend_type = 'client backend'"""
                ).fetchone()
                if not left and not sessions:
                    break
                time.sleep(0.1)
        assert left == [] and sessions == 0, (left, sessions)
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    run_to_end(db_url, corpus)  # and the next run completes


def test_two_concurrent_ingests_produce_no_duplicates(db_url, conninfo, corpus, pg_server_url):
    clean = snapshot_of_clean_run(pg_server_url, corpus)
    processes = [start_ingest(db_url, corpus) for _ in range(2)]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()
    run_to_end(db_url, corpus)  # codex, and anything a busy file left
    assert snapshot(conninfo) == clean


def test_two_runs_waiting_for_each_others_files_do_not_fail(conninfo):
    """At the end of their lists, two runs each wait for a file the other holds, while still
    holding the files of their batch not yet committed: PostgreSQL found the deadlock and
    failed one of the two runs ("deadlock detected", seen once in a full suite). The run it
    picks passes the file over instead, as it does one held too long: its holder reads it."""
    import threading

    from ingestion.loader import CanonicalLoader, ensure_company

    with psycopg.connect(conninfo, autocommit=True) as first, \
            psycopg.connect(conninfo, autocommit=True) as second:  # fmt: skip
        company = ensure_company(first, "local")
        a, b = (CanonicalLoader(conn, company, "claude_code") for conn in (first, second))
        assert a.try_lock_files(["x.jsonl"]) == ["x.jsonl"]
        assert b.try_lock_files(["y.jsonl"]) == ["y.jsonl"]
        results: dict[str, bool | BaseException] = {}

        def wait(name: str, loader: CanonicalLoader, path: str) -> None:
            try:
                results[name] = loader.lock_file_waiting(path, 20)
            except BaseException as error:
                results[name] = error
            loader.release_all_files()  # its run goes on, commits its batch and lets go

        threads = [threading.Thread(target=wait, args=("a", a, "y.jsonl")),
                   threading.Thread(target=wait, args=("b", b, "x.jsonl"))]  # fmt: skip
        threads[0].start()
        time.sleep(0.3)
        threads[1].start()
        for thread in threads:
            thread.join(60)
    assert sorted(map(str, results.values())) == ["False", "True"], results
