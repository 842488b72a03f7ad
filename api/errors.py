"""One error model for every failure the API answers with, and the handlers that produce it.

{"error": "forbidden", "message": "...", "details": [{"loc": [...], "message": "..."}]}
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ingestion.messages import first_line
from ingestion.warehouse.errors import WarehouseBusy, WarehouseUnavailable

log = logging.getLogger("tally.api")
STORE_RETRY_AFTER = "10"  # seconds: a restart's length


class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(default_factory=list, description="Path to the bad field.")
    message: str


class ErrorBody(BaseModel):
    error: str = Field(description="A stable code: unauthenticated, forbidden, not_found, ...")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, details: list[ErrorDetail] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []


def unauthenticated(message: str = "a valid API key is required") -> ApiError:
    return ApiError(401, "unauthenticated", message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def conflict(message: str) -> ApiError:
    return ApiError(409, "conflict", message)


def invalid(message: str, loc: list[str | int] | None = None) -> ApiError:
    return ApiError(422, "invalid", message, [ErrorDetail(loc=loc or [], message=message)])


CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    503: "unavailable",
}


def _response(status: int, body: ErrorBody, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the errors a route can answer with; every route that takes a key
    reads the canonical store, so any of them can find it unavailable (503)."""
    return {
        status: {"model": ErrorBody, "description": CODES.get(status, "error")}
        for status in sorted({*statuses, 503})
    }


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _methods_of(request: Request) -> list[str]:
    """The methods the request's path takes, over all its routes: Starlette's 405 names only
    those of the first route it matched (GET and POST of one path are two routes)."""
    return [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return _response(
            error.status,
            ErrorBody(error=error.code, message=error.message, details=error.details),
            headers,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        details = [
            ErrorDetail(loc=list(e.get("loc", ())), message=str(e.get("msg", "")))
            for e in error.errors()
        ]
        return _response(
            422, ErrorBody(error="invalid", message="the request is malformed", details=details)
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400:
            # FastAPI's answer to a body it cannot decode (bytes that are not UTF-8), while
            # text that is not JSON is a 422: one status for a malformed body, the one every
            # route documents.
            detail = ErrorDetail(loc=["body"], message="the body is not JSON text in UTF-8")
            body = ErrorBody(error="invalid", message="the request is malformed", details=[detail])
            return _response(422, body)
        code = CODES.get(error.status_code, "error")
        headers = dict(error.headers or {})  # those HTTP asks for: `Retry-After`, ...
        if error.status_code == 405:
            headers["Allow"] = ", ".join(_methods_of(request))
        return _response(
            error.status_code, ErrorBody(error=code, message=str(error.detail)), headers
        )

    @app.exception_handler(psycopg.errors.DataError)
    async def unrepresentable(_: Request, error: psycopg.errors.DataError) -> JSONResponse:
        # a value the database cannot hold (NUL in a query parameter, a number out of range)
        first = first_line(error, "invalid value")
        return _response(422, ErrorBody(error="invalid", message=first))

    @app.exception_handler(WarehouseBusy)
    async def warehouse_busy(_: Request, error: WarehouseBusy) -> JSONResponse:
        body = ErrorBody(error="unavailable", message=str(error))
        return _response(503, body, {"Retry-After": "30"})

    @app.exception_handler(WarehouseUnavailable)
    async def warehouse_unavailable(_: Request, error: WarehouseUnavailable) -> JSONResponse:
        # not worth retrying until an operator has looked: no Retry-After
        return _response(503, ErrorBody(error="unavailable", message=str(error)))

    @app.exception_handler(psycopg.OperationalError)
    async def store_unavailable(_: Request, error: psycopg.OperationalError) -> JSONResponse:
        # the server is down, restarting, out of disk or connections: the client should try
        # again later, and learns nothing of the server's address or files
        log.warning("canonical store unavailable: %s", first_line(error, repr(error)))
        state = f" (SQLSTATE {error.sqlstate})" if error.sqlstate else ""
        body = ErrorBody(error="unavailable", message=f"the database is unavailable{state}")
        return _response(503, body, {"Retry-After": STORE_RETRY_AFTER})

    @app.exception_handler(PoolTimeout)
    async def no_connection(_: Request, error: PoolTimeout) -> JSONResponse:
        log.warning("no database connection: %s", error)
        body = ErrorBody(error="unavailable", message="no database connection could be had")
        return _response(503, body, {"Retry-After": STORE_RETRY_AFTER})

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=error)
        return _response(500, ErrorBody(error="internal", message="internal error"))
