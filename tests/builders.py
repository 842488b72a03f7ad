"""Small builders for transcript lines in the real formats, written as compact JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson


def write_jsonl(path: Path, lines: list[dict[str, Any] | bytes], mode: str = "wb") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode) as handle:
        for line in lines:
            handle.write((line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n")
    return path


def usage(
    input_tokens: int = 10,
    output: int = 100,
    cache_read: int = 1000,
    write_5m: int = 0,
    write_1h: int = 0,
    split: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": write_5m + write_1h,
        "cache_read_input_tokens": cache_read,
        "output_tokens": output,
        "service_tier": "standard",
    }
    if split:
        body["cache_creation"] = {
            "ephemeral_5m_input_tokens": write_5m,
            "ephemeral_1h_input_tokens": write_1h,
        }
    body.update(extra)
    return body


def assistant(
    message_id: str,
    request_id: str | None,
    at: str,
    usage_body: dict[str, Any] | None,
    *,
    session: str = "s1",
    model: str = "claude-sonnet-4-5-20250929",
    content: list[dict[str, Any]] | None = None,
    sidechain: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "model": model,
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "content": content or [{"type": "text", "text": "ok"}],
        "stop_reason": None,
    }
    if usage_body is not None:
        message["usage"] = usage_body
    line: dict[str, Any] = {
        "parentUuid": None,
        "isSidechain": sidechain,
        "cwd": "/home/dev/src/app",
        "sessionId": session,
        "version": "2.1.14",
        "gitBranch": "main",
        "type": "assistant",
        "message": message,
        "uuid": f"u-{message_id}-{at}",
        "timestamp": at,
    }
    if request_id is not None:
        line["requestId"] = request_id
    line.update(extra)
    return line


def user_text(at: str, session: str = "s1") -> dict[str, Any]:
    return {
        "type": "user",
        "sessionId": session,
        "cwd": "/home/dev/src/app",
        "version": "2.1.14",
        "gitBranch": "main",
        "message": {"role": "user", "content": "please fix it"},
        "uuid": f"u-{at}",
        "timestamp": at,
    }


def tool_result(
    tool_use_id: str,
    at: str,
    text: str,
    *,
    is_error: bool = False,
    session: str = "s1",
    structured: Any = None,
) -> dict[str, Any]:
    return {
        "type": "user",
        "sessionId": session,
        "cwd": "/home/dev/src/app",
        "message": {
            "role": "user",
            "content": [
                {
                    "tool_use_id": tool_use_id,
                    "type": "tool_result",
                    "content": text,
                    "is_error": is_error,
                }
            ],
        },
        "toolUseResult": structured if structured is not None else {"type": "text"},
        "uuid": f"r-{tool_use_id}",
        "timestamp": at,
    }


def codex_line(at: str, kind: str, payload: dict[str, Any] | None) -> dict[str, Any]:
    return {"timestamp": at, "type": kind, "payload": payload}


def token_count(
    at: str, total: tuple[int, int, int, int], last: tuple[int, int, int, int]
) -> dict[str, Any]:
    names = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens")

    def block(values: tuple[int, int, int, int]) -> dict[str, int]:
        body = dict(zip(names, values, strict=True))
        body["total_tokens"] = values[0] + values[2]
        return body

    return codex_line(
        at,
        "event_msg",
        {
            "type": "token_count",
            "info": {
                "total_token_usage": block(total),
                "last_token_usage": block(last),
                "model_context_window": 272000,
            },
            "rate_limits": {"primary": {"used_percent": 3.0, "window_minutes": 300}},
        },
    )
