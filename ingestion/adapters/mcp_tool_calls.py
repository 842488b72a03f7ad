"""MCP tool-call logs (JSONL, one call per line) into `tool_calls`.

A line names the tool, its server, the MCP session, when it started, how long it took, whether
it succeeded and how large its response was. Field names follow either snake_case or the
camelCase of Pigeon's ToolCallLog: `tool`/`toolName`, `server`/`mcpServer`,
`session`/`sessionId`, `started_at`/`createdAt`/`timestamp`, `duration_ms`/`durationMs`,
`success`, `response_chars`/`response_size`, `response_tokens`/`responseTokens`,
`error`/`errorMessage`, `id`/`call_id`. A line without an id is keyed by its content, so
re-reading it is harmless."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ingestion.adapters.base import JsonlParser
from ingestion.adapters.common import (
    InvalidRecord,
    estimate_tokens,
    key_text,
    mcp_server_of,
    optional_str,
    require_timestamp,
    token_count,
)
from ingestion.adapters.records import ToolCallRecord
from ingestion.batch import Batch
from schemas.limits import MAX_DURATION_MS

SOURCE = "mcp"


def _first(obj: dict[str, Any], *names: str) -> Any:
    for name in names:
        if obj.get(name) is not None:
            return obj[name]
    return None


class McpToolCallParser(JsonlParser):
    parse_markers = (b"{",)  # every line is a call

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def state(self) -> dict[str, Any]:
        return {}

    def observe(self, at: datetime, batch: Batch) -> None:  # pragma: no cover - never skipped
        return

    def handle_object(self, obj: dict[str, Any], offset: int, batch: Batch) -> int:
        named = _first(obj, "tool", "tool_name", "toolName", "name")
        tool = key_text(named, "the tool name")
        if tool is None:
            if named is None or named == "":
                raise InvalidRecord("tool call without a tool name")
            raise InvalidRecord(f"the tool name must be text, got {named!r:.40}")
        session = key_text(_first(obj, "session", "session_id", "sessionId"), "the session id")
        if session is None:
            raise InvalidRecord("tool call without a session id")
        started = require_timestamp(
            _first(obj, "started_at", "start", "createdAt", "created_at", "timestamp"),
            "started_at",
        )
        duration = token_count(
            {"duration_ms": _first(obj, "duration_ms", "durationMs", "duration")},
            "duration_ms", "call", limit=MAX_DURATION_MS,
        )  # fmt: skip
        try:
            ended = started + timedelta(milliseconds=duration)
        except OverflowError:
            raise InvalidRecord("call ends after the year 9999") from None
        success = _first(obj, "success", "ok")
        if success is not None and not isinstance(success, bool):
            raise InvalidRecord(f"success must be true or false, got {success!r:.20}")
        chars = _first(obj, "response_chars", "response_size", "responseChars")
        tokens = _first(obj, "response_tokens", "responseTokens")
        sizes = {"chars": chars, "tokens": tokens}
        chars = token_count(sizes, "chars", "response") if chars is not None else None
        tokens = token_count(sizes, "tokens", "response") if tokens is not None else None
        if tokens is None and chars is not None:
            tokens = estimate_tokens(chars)
        raw_id = _first(obj, "id", "call_id", "callId")
        if isinstance(raw_id, int) and not isinstance(raw_id, bool):
            raw_id = str(raw_id)  # JSON-RPC ids are text or numbers
        call_id = key_text(raw_id, "the call id")
        if call_id is None:
            digest = hashlib.sha1(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()
            call_id = f"line:{digest[:24]}"
        session_record = batch.session(session)
        session_record.observe(started)
        if session_record.source_path is None:
            session_record.source_path = self.path
        error = optional_str(_first(obj, "error", "errorMessage", "error_message"))
        batch.add_tool_call(ToolCallRecord(
            call_key=call_id, session_key=session, tool_name=tool,
            mcp_server=optional_str(_first(obj, "server", "mcp_server", "mcpServer"))
            or mcp_server_of(tool),
            started_at=started, ended_at=ended,
            success=success, error_message=error[:500] if error else None,
            result_chars=chars, result_tokens_estimate=tokens, source_path=self.path,
        ))  # fmt: skip
        return 0
