"""The API's pool of connections to the canonical store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool


class LivePool(ConnectionPool[psycopg.Connection[Any]]):
    """A pool that hands out only connections that answer. After the server restarts, every
    idle connection is dead: handed out as it was, each failed one request with a 500.
    psycopg_pool's own `check` finds them too, but waits one second, then two, then four,
    after each dead one it meets, so the first request after a restart could wait for all
    of them; here the same check runs, a dead connection is dropped (the pool opens
    another) and the next one tried at once."""

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        for _ in range(self.max_size):
            with super().connection(timeout) as conn:
                try:
                    self.check_connection(conn)
                except psycopg.OperationalError:
                    continue  # returned broken, it is closed and replaced
                yield conn
                return
        # as many dead ones as the pool holds: what it opens now is new
        with super().connection(timeout) as conn:
            yield conn
