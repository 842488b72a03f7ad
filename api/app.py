"""The FastAPI application: ingestion endpoints, governance writes and cost reads over the
canonical store and the warehouse. `create_app()` builds it from TALLY_* settings;
`tally serve` runs it with uvicorn."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api import errors
from api.deps import ApiState
from api.limits import BodyLimit
from api.pool import LivePool
from api.records import RECORD_MODELS
from api.routes import governance, ingest, reads

VERSION = "1.0.0"
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
# How long a request waits for a database connection before the answer is 503: longer than
# a burst queues for, shorter than a hook waits on a store that is down.
POOL_TIMEOUT_SECONDS = 10.0
APPLICATION_NAME = "tally-api"  # its connections, in pg_stat_activity


def create_app(
    database_url: str | None = None,
    warehouse_url: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    pool_size: int = 8,
    pool_timeout: float = POOL_TIMEOUT_SECONDS,
) -> FastAPI:
    from ingestion.schema_check import ensure_schema
    from ingestion.settings import get_settings
    from ingestion.store import database_url as store_url
    from ingestion.store import psycopg_conninfo

    settings = get_settings()
    url = database_url or store_url(settings)
    conninfo = psycopg_conninfo(url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ensure_schema(url, conninfo)
        pool = LivePool(
            conninfo, min_size=2, max_size=pool_size, open=True, timeout=pool_timeout,
            kwargs={"autocommit": True, "application_name": APPLICATION_NAME},
        )  # fmt: skip
        app.state.tally = ApiState(
            pool, warehouse_url or settings.resolved_warehouse_url, max_body_bytes, url, settings
        )
        # start-up objects (routes, models, schemas) live for good: keep them out of the
        # collector's way, so its pauses stay short under load
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(
        title="tally",
        version=VERSION,
        description="Ingestion endpoints for agents and their hooks, governance writes for the "
        "board, cost reads. Every route but /health takes `Authorization: Bearer <key>` "
        "(`tally keys create`). Errors share one model: `{error, message, details}`.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    app.include_router(ingest.router)
    for router in governance.routers():
        app.include_router(router)
    app.include_router(reads.router)

    @app.get("/health", tags=["meta"], summary="Liveness (no key needed)")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    def openapi() -> dict[str, Any]:
        """The generated document, plus the record models the batch routes document by
        reference (they parse their bodies themselves to answer per record)."""
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for model in RECORD_MODELS:
                definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(definition.pop("$defs", {}))
                schemas[model.__name__] = definition
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def app_from_settings() -> FastAPI:
    """The app as `tally serve` runs it in each uvicorn worker, from TALLY_* variables."""
    import os

    max_body = int(os.environ.get("TALLY_API_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
    return create_app(max_body_bytes=max_body)
