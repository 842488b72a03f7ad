"""An API client on the test's own database and warehouse, keys for two companies, and a
real `tally serve` on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from fastapi.testclient import TestClient

from ingestion.keys import create_key


@dataclass
class Keys:
    board: str
    agent: str  # acme's agent "eng"
    other_agent: str  # acme's agent "ops"
    service: str
    other_board: str  # another company's board

    @staticmethod
    def create(conninfo: str) -> Keys:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            return Keys(
                board=create_key(conn, "acme", "board").key,
                agent=create_key(conn, "acme", "agent", "eng").key,
                other_agent=create_key(conn, "acme", "agent", "ops").key,
                service=create_key(conn, "acme", "service").key,
                other_board=create_key(conn, "globex", "board").key,
            )


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def usage_record(n: int, session: str = "s-1", **extra: Any) -> dict[str, Any]:
    return {
        "session_id": session,
        "message_id": f"msg-{n}",
        "request_id": f"req-{n}",
        "occurred_at": f"2026-11-01T10:{n % 60:02d}:00Z",
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "input_tokens": 10,
        "output_tokens": 100,
        "cache_read_tokens": 1000,
        **extra,
    }


def count(conninfo: str, table: str) -> int:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def post(client: TestClient, path: str, key: str, records: list[dict[str, Any]]) -> Any:
    return client.post(path, json={"records": records}, headers=auth(key))


TALLY = Path(sys.executable).parent / "tally"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db_url: str, data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "TALLY_DATABASE_URL": db_url, "TALLY_DATA_DIR": str(data_dir)}
    server = subprocess.Popen(
        [str(TALLY), "serve", "--port", str(port)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the server did not start")


@contextmanager
def serving(db_url: str, data_dir: Path, port: int | None = None) -> Iterator[str]:
    """`tally serve` on `port` (a free one by default) for the block: its URL."""
    port = port or free_port()
    server = start_server(db_url, data_dir, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
