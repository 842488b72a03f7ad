"""Killing the server in the middle of batches: nothing acknowledged is lost, and retrying
every batch afterwards creates each record exactly once."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import psycopg
import pytest

from ingestion.keys import create_key
from tests.api_helpers import count, free_port, start_server, usage_record

BATCHES, SIZE = 40, 200


def batch(n: int) -> list[dict]:
    return [usage_record(n * SIZE + i, session=f"s-{n % 3}") for i in range(SIZE)]


@pytest.mark.slow
def test_a_killed_server_loses_nothing_acknowledged(tally_env, db_url, conninfo, tmp_path):
    with psycopg.connect(conninfo, autocommit=True) as conn:
        key = create_key(conn, "acme", "service").key
    headers = {"Authorization": f"Bearer {key}"}
    port = free_port()
    server = start_server(db_url, tmp_path / "data", port)
    acknowledged: list[int] = []

    def send() -> None:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10
        ) as client:
            for n in range(BATCHES):
                try:
                    answer = client.post("/v1/usage-events", json={"records": batch(n)})
                except httpx.HTTPError:
                    return  # the server is gone
                if answer.status_code == 200:
                    acknowledged.append(n)

    sender = threading.Thread(target=send)
    sender.start()
    while len(acknowledged) < 5 and sender.is_alive():
        time.sleep(0.005)
    os.killpg(server.pid, signal.SIGKILL)  # mid-stream: a batch is usually in flight
    server.wait()
    sender.join()
    assert 5 <= len(acknowledged) < BATCHES
    with psycopg.connect(conninfo) as conn:
        stored = {row[0] for row in conn.execute("SELECT message_id FROM token_usage_events")}
    for n in acknowledged:
        assert {record["message_id"] for record in batch(n)} <= stored

    server = start_server(db_url, tmp_path / "data", port)
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
        ) as client:
            for n in range(BATCHES):
                answer = client.post("/v1/usage-events", json={"records": batch(n)}).json()
                assert answer["rejected"] == 0
                if n in acknowledged:
                    assert answer["duplicates"] == SIZE
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=30)
    assert count(conninfo, "token_usage_events") == BATCHES * SIZE
