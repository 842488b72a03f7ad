"""What routes depend on: a pooled connection to the canonical store, the warehouse, and the
caller's key (bearer auth on everything but /health)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import forbidden, unauthenticated
from api.pool import LivePool
from ingestion.keys import Principal, authenticate
from ingestion.settings import TallySettings
from ingestion.warehouse.base import Warehouse, open_warehouse

WAREHOUSE_WAIT_SECONDS = 10.0


@dataclass
class ApiState:
    pool: LivePool
    warehouse_url: str
    max_body_bytes: int
    database_url: str  # for the freshness check of cost reads
    settings: TallySettings

    def warehouse(self) -> Warehouse:
        # a request waits briefly for a materialisation to release the file, then gets a 503
        return open_warehouse(self.warehouse_url, lock_wait_seconds=WAREHOUSE_WAIT_SECONDS)


def state(request: Request) -> ApiState:
    return request.app.state.tally  # type: ignore[no-any-return]


def connection(request: Request) -> Iterator[psycopg.Connection[Any]]:
    with state(request).pool.connection() as conn:
        yield conn


bearer = HTTPBearer(auto_error=False, description="An API key from `tally keys create`.")


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def authorize(conn: psycopg.Connection[Any], credentials: HTTPAuthorizationCredentials | None,
              roles: tuple[str, ...] | None = None) -> Principal:  # fmt: skip
    """The caller of a live key with one of `roles` (401 without one, 403 with another
    role)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthenticated()
    found = authenticate(conn, credentials.credentials)
    if found is None:
        raise unauthenticated("the API key is unknown or revoked")
    if roles is not None and found.role not in roles:
        needed = " or ".join(roles)
        raise forbidden(f"{found.role} keys cannot do this (it takes {needed} keys)")
    return found


def principal(request: Request, credentials: Credentials) -> Principal:
    with state(request).pool.connection() as conn:
        return authorize(conn, credentials)


def require(*roles: str) -> Callable[[Principal], Principal]:
    def check(caller: Annotated[Principal, Depends(principal)]) -> Principal:
        if caller.role not in roles:
            needed = " or ".join(roles)
            raise forbidden(f"{caller.role} keys cannot do this (it takes {needed} keys)")
        return caller

    return check


Connection = Annotated[psycopg.Connection[Any], Depends(connection)]
Caller = Annotated[Principal, Depends(principal)]
Writer = Annotated[Principal, Depends(require("agent", "service"))]
Board = Annotated[Principal, Depends(require("board"))]
Reader = Annotated[Principal, Depends(require("agent", "service", "board"))]
