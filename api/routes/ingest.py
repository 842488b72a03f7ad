"""Ingestion endpoints for agents, hooks and services (agent and service keys)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel

from api.batch import BatchAnswer, Outcome, batch_schema, parse_batch
from api.deps import Credentials, authorize, state
from api.errors import error_responses
from api.records import AttributionHintIn, HeartbeatRunIn, ToolCallIn, UsageEventIn
from api.writes import write_hints, write_runs, write_tool_calls, write_usage

router = APIRouter(prefix="/v1", tags=["ingestion"])
ERRORS = error_responses(401, 403, 413, 422)
DESCRIPTION = (
    "A batch of 1 to 1,000 records. Each is answered `accepted` (committed), `duplicate` "
    "(its natural key is already stored: a retried batch creates nothing) or `rejected` "
    "(with the reason and field path); valid records are kept whatever the others hold. The "
    "answer comes after the commit."
)


WRITER_ROLES = ("agent", "service")


async def _ingest(request: Request, credentials: HTTPAuthorizationCredentials | None,
                  model: type[BaseModel], write: Callable[..., None]) -> Response:  # fmt: skip
    body = await request.body()

    def work() -> Outcome:
        # one thread and one pooled connection for the key check and the write
        with state(request).pool.connection() as conn:
            caller = authorize(conn, credentials, WRITER_ROLES)
            records, outcome = parse_batch(body, model)
            if records:
                write(conn, caller, records, outcome)
        return outcome

    answer = (await run_in_threadpool(work)).answer()
    # serialised here: the answer is already valid, and FastAPI's re-validation of up to
    # 1,000 results would cost more than the write of a small batch
    return Response(orjson.dumps(answer.model_dump()), media_type="application/json")


def _route(path: str, model: type[BaseModel], write: Callable[..., None], summary: str) -> Any:
    async def endpoint(request: Request, credentials: Credentials) -> Response:
        return await _ingest(request, credentials, model, write)

    endpoint.__name__ = f"post_{path.strip('/').replace('-', '_')}"
    return router.post(
        path,
        response_model=BatchAnswer,
        responses=ERRORS,
        summary=summary,
        description=DESCRIPTION,
        openapi_extra=batch_schema(model),
    )(endpoint)


_route("/usage-events", UsageEventIn, write_usage, "Model requests (usage and cost)")
_route("/tool-calls", ToolCallIn, write_tool_calls, "Tool calls")
_route("/heartbeat-runs", HeartbeatRunIn, write_runs, "Heartbeat runs and their events")
_route(
    "/attribution-hints",
    AttributionHintIn,
    write_hints,
    "Attribution hints: this session serves this issue from a time on",
)
