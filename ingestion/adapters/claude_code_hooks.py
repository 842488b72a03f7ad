"""Claude Code hook input (the JSON object a hook command reads on stdin) into the half of a
tool call that the hook sees, as a record for `POST /v1/tool-calls`.

PreToolUse sees the call start (`tool_name`, `tool_input`, `tool_use_id`); PostToolUse sees
it end with its `tool_response`; PostToolUseFailure sees it fail with an `error`. The API
merges the halves into one call, and with the same call read from the transcript (the
`tool_use` block's id is the hook's `tool_use_id`; the session key is the transcript's, a
subagent's being `<session>:agent-<agent_id>`), so that hooks and file ingestion never count
a call twice. The tool-call details are read by the transcript parser's own rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ingestion.adapters.claude_code import SOURCE
from ingestion.adapters.common import (
    InvalidRecord,
    commit_hashes_in,
    edited_files,
    estimate_tokens,
    issue_refs_in,
    key_text,
    mcp_server_of,
    result_text,
    runs_git_commit,
)

STARTS, ENDS, FAILS = "PreToolUse", "PostToolUse", "PostToolUseFailure"
TOOL_EVENTS = (STARTS, ENDS, FAILS)
ERROR_CHARS = 500  # as much of an error as the transcript parser keeps


def session_key(payload: dict[str, Any]) -> str:
    """The transcript's session key: a subagent's calls are in its own file and session."""
    session = key_text(payload.get("session_id"), "session_id")
    if session is None:
        raise InvalidRecord("the hook input has no session_id")
    agent = key_text(payload.get("agent_id"), "agent_id")
    return f"{session}:agent-{agent}" if agent else session


def _response_text(response: Any) -> str | None:
    """The text the transcript's `tool_result` holds for this response, where it is plain:
    text or content blocks (MCP tools), a shell's stdout and stderr. Other tools answer the
    hook with structured objects whose size says nothing of the result the model read: None,
    left to the transcript."""
    if isinstance(response, str | list):
        return result_text(response)
    if isinstance(response, dict) and isinstance(response.get("stdout"), str):
        stderr = response.get("stderr")
        return response["stdout"] + (f"\n{stderr}" if isinstance(stderr, str) and stderr else "")
    return None


def tool_call_half(payload: Any, now: datetime) -> dict[str, Any] | None:
    """The record for what the hook saw at `now`; None for an event that is not a tool call's.
    Input that cannot be a tool call's raises InvalidRecord with the reason."""
    if not isinstance(payload, dict):
        raise InvalidRecord(f"the hook input is not a JSON object: {payload!r:.60}")
    event = payload.get("hook_event_name")
    if event not in TOOL_EVENTS:
        return None
    call_id = key_text(payload.get("tool_use_id"), "tool_use_id")
    if call_id is None:
        raise InvalidRecord(f"{event} input has no tool_use_id (Claude Code before 2.0?)")
    tool_name = key_text(payload.get("tool_name"), "tool_name")
    if tool_name is None:
        raise InvalidRecord(f"{event} input has no tool_name")
    raw_input = payload.get("tool_input")
    tool_input = raw_input if isinstance(raw_input, dict) else {}
    record: dict[str, Any] = {
        "source": SOURCE,
        "session_id": session_key(payload),
        "call_id": call_id,
        "tool_name": tool_name,
        "mcp_server": mcp_server_of(tool_name),
        "started_at": now.isoformat(),
        "file_paths": edited_files(tool_name, tool_input),
        "issue_refs": issue_refs_in(tool_input),
    }
    if event == STARTS:
        return record
    record["ended_at"] = now.isoformat()
    if event == FAILS:
        error = payload.get("error")
        record["success"] = False
        record["error_message"] = str(error)[:ERROR_CHARS] if error is not None else None
        return record
    record["success"] = True
    text = _response_text(payload.get("tool_response"))
    if text is not None:
        record["result_chars"] = len(text)
        record["result_tokens_estimate"] = estimate_tokens(len(text))
        if runs_git_commit(tool_input):
            record["commit_hashes"] = commit_hashes_in(text)
    return record
