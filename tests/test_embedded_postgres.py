"""The project-local PostgreSQL: started on demand, and started again after it died, whatever
its lock file still says."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from ingestion.postgres.embedded import EmbeddedPostgres

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    embedded = EmbeddedPostgres(tmp_path / "postgres", durable=False)
    try:
        yield embedded
    finally:
        embedded.stop()


def answers(url: str) -> bool:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, connect_timeout=5) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


def killed(server: EmbeddedPostgres) -> Path:
    """SIGKILL the postmaster, as the OOM killer or a power cut would; its lock file stays."""
    pid_file = server.cluster_dir / "postmaster.pid"
    pid = int(pid_file.read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    # its backends notice and leave within moments; a new postmaster waits for their memory
    time.sleep(0.5)
    assert pid_file.exists()
    return pid_file


def test_started_on_demand_reused_and_stopped(server: EmbeddedPostgres) -> None:
    assert not server.status().running
    url = server.ensure_running()
    assert answers(url)
    assert server.ensure_running() == url  # reused, not started twice
    assert server.status().running and server.status().url == url
    assert server.stop()
    assert not server.status().running and not server.stop()


def test_a_lock_file_naming_a_process_that_is_no_postgres_is_stale(
    server: EmbeddedPostgres,
) -> None:
    """After a reboot (or in a container) the dead server's PID is soon another process's:
    taken for the server, every command went to a port nobody listened on, and PostgreSQL
    itself refused to start while that process lived."""
    server.ensure_running()
    pid_file = killed(server)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lines = pid_file.read_text().splitlines()
        pid_file.write_text("\n".join([str(stranger.pid), *lines[1:]]) + "\n")
        assert not server.status().running
        url = server.ensure_running()
        assert answers(url)
        assert stranger.poll() is None  # left alone
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.parametrize("leftover", ["dead process", "empty file"])
def test_a_lock_file_left_by_a_dead_server_does_not_stop_the_next_start(
    server: EmbeddedPostgres, leftover: str
) -> None:
    server.ensure_running()
    pid_file = killed(server)
    if leftover == "empty file":  # the machine died as the server was starting
        pid_file.write_text("")
    assert not server.status().running
    assert answers(server.ensure_running())
