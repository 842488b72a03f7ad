"""Claude Code hook input (the JSON object a hook command reads on stdin) into records for the
API: the half of a tool call that a tool hook sees, and at a stop the requests and tool calls
the transcript gained since the last stop.

PreToolUse sees the call start (`tool_name`, `tool_input`, `tool_use_id`); PostToolUse sees
it end with its `tool_response`; PostToolUseFailure sees it fail with an `error`. The API
merges the halves into one call, and with the same call read from the transcript (the
`tool_use` block's id is the hook's `tool_use_id`; the session key is the transcript's, a
subagent's being `<session>:agent-<agent_id>`), so that hooks and file ingestion never count
a call twice. The tool-call details are read by the transcript parser's own rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ingestion.adapters.claude_code import (
    SOURCE,
    ClaudeTranscriptParser,
    FileContext,
    subagent_parent,
)
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
from ingestion.batch import Batch
from ingestion.lines import LineReader, OversizeLine
from schemas.warehouse import TOKEN_NAMES

STARTS, ENDS, FAILS = "PreToolUse", "PostToolUse", "PostToolUseFailure"
TOOL_EVENTS = (STARTS, ENDS, FAILS)
ERROR_CHARS = 500  # as much of an error as the transcript parser keeps


def sessions_of(payload: dict[str, Any]) -> dict[str, str | None]:
    """The transcript's session key, and the parent's for a subagent (whose calls are in its
    own file and session)."""
    session = key_text(payload.get("session_id"), "session_id")
    if session is None:
        raise InvalidRecord("the hook input has no session_id")
    agent = key_text(payload.get("agent_id"), "agent_id")
    if agent:
        return {"session_id": f"{session}:agent-{agent}", "parent_session_id": session}
    return {"session_id": session, "parent_session_id": None}


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
        **sessions_of(payload),
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


# -- Stop: the transcripts' new requests and tool calls ---------------------------------------

STOPS = ("Stop", "SubagentStop", "SessionEnd")
USD_PLACES = Decimal("1e-12")  # the API keeps a reported cost to 12 places
MAX_LINE_BYTES = 64 << 20  # as file ingestion's default (TALLY_MAX_LINE_BYTES)


@dataclass
class StopRead:
    """What a stop's transcripts gained past their offsets, read together: a subagent's
    request is in its own file and, as an `agent_progress` copy, in the main transcript; as
    file ingestion does, the copies are one request, the most complete, at the earliest
    time."""

    batch: Batch = field(default_factory=Batch)
    ends: dict[Path, int] = field(default_factory=dict)  # each file's last complete line

    def read(self, path: Path, start: int) -> None:
        """Parse `path` from byte `start` to its last complete line (a line being written is
        left for the next stop) by the transcript parser's rules, a chunk at a time."""
        # the projects directory: <project>/<session>.jsonl, <project>/<session>/subagents/..
        root = path.parent.parent if subagent_parent(path) is None else path.parents[3]
        parser = ClaudeTranscriptParser(FileContext(path, root))
        with path.open("rb") as handle:
            reader = LineReader(handle, start, MAX_LINE_BYTES)
            for item in reader:
                if isinstance(item, OversizeLine):
                    reason = (f"line of {item.length} bytes exceeds the {MAX_LINE_BYTES}-byte "
                              "limit: passed over")  # fmt: skip
                    self.batch.reject(str(path), str(item.offset), reason, item.head)
                    continue
                parser.handle_line(*item, self.batch)
        self.ends[path] = reader.end_offset

    def problems(self) -> list[str]:
        return [f"{Path(r.location).name} byte {r.position}: {r.reason}"
                for r in self.batch.rejects]  # fmt: skip

    def usage(self) -> list[dict[str, Any]]:
        self.batch.drop_sidechain_replays()
        records = []
        for usage in self.batch.usage.values():
            session = self.batch.sessions.get(usage.session_key)
            cost = usage.reported_cost_usd
            records.append({
                "source": SOURCE, "session_id": usage.session_key,
                "message_id": usage.message_id, "request_id": usage.request_id,
                "occurred_at": usage.occurred_at.isoformat(), "provider": usage.provider,
                "model": usage.model,
                **{name: getattr(usage, name) for name in (*TOKEN_NAMES, "web_search_requests")},
                "service_tier": usage.service_tier,
                "reported_cost_usd": str(Decimal(cost).quantize(USD_PLACES)) if cost else None,
                "project_path": session.project_path if session else None,
                "parent_session_id": session.parent_key if session else None,
            })  # fmt: skip
        return records

    def tool_calls(self) -> list[dict[str, Any]]:
        records = []
        for call in self.batch.tool_calls.values():
            if call.started_at is None and call.ended_at is None:
                continue  # nothing the API could place in time
            # a result alone is the end of a call an earlier stop read (a Task call that a
            # SubagentStop saw start): the API completes the start it holds with it
            session = self.batch.sessions.get(call.session_key)
            records.append({
                "source": SOURCE, "session_id": call.session_key, "call_id": call.call_key,
                "tool_name": call.tool_name, "mcp_server": call.mcp_server,
                "started_at": call.started_at.isoformat() if call.started_at else None,
                "ended_at": call.ended_at.isoformat() if call.ended_at else None,
                "success": call.success, "error_message": call.error_message,
                "result_chars": call.result_chars,
                "result_tokens_estimate": call.result_tokens_estimate,
                "file_paths": call.file_paths, "commit_hashes": call.commit_hashes,
                "issue_refs": call.issue_refs,
                "parent_session_id": session.parent_key if session else None,
            })  # fmt: skip
        return records


def transcripts_of(payload: dict[str, Any]) -> list[Path]:
    """The transcript a stop names and its subagents' files (`<session>/subagents/*.jsonl`,
    which hold what the subagents requested)."""
    paths: list[Path] = []
    for field_name in ("transcript_path", "agent_transcript_path"):
        value = payload.get(field_name)
        if isinstance(value, str) and value:
            path = Path(value).expanduser()
            if path not in paths:
                paths.append(path)
    if paths:
        subagents = paths[0].with_suffix("") / "subagents"
        paths += sorted(p for p in subagents.glob("*.jsonl") if p not in paths)
    return paths
