"""Codex CLI rollouts (`~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl`) into usage, sessions and
tool calls.

Follows `reference/agent-logs.md` §2: usage is the delta between consecutive cumulative
`total_token_usage` values, so the doubled `token_count` events add nothing; a counter that
goes down starts a new segment; the model is the latest `turn_context`'s; `input_tokens`
includes cached input and `output_tokens` includes reasoning (tally stores uncached input and
keeps reasoning as "of which"). A request is keyed by (session, segment, cumulative total),
which is the same however the file is split across reads. Subagent rollouts replay their
parent's history first: those replayed events set the baseline and are not counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from ingestion.adapters.base import JsonlParser
from ingestion.adapters.common import (
    InvalidRecord,
    commit_hashes_in,
    estimate_tokens,
    issue_refs_in,
    key_text,
    mcp_server_of,
    optional_str,
    parse_timestamp,
    patched_files,
    require_timestamp,
    token_count,
)
from ingestion.adapters.records import ToolCallRecord, UsageRecord
from ingestion.batch import Batch

SOURCE = "codex"
# `codex exec --json` prints its own shape (thread.started, item.completed, turn.completed):
# its usage has no time and no model, so it cannot be priced or given a day. Codex writes the
# same turns to a rollout under sessions/, which is what tally reads; a directory of captured
# exec output (CI logs) once loaded nothing without a word.
EXEC_TURN_COMPLETED = "turn.completed"
EXEC_OUTPUT_REFUSED = (
    "`codex exec --json` output: its usage has no timestamp or model, so it cannot be priced; "
    "tally reads the rollout Codex writes for the same run under $CODEX_HOME/sessions"
)
TOTAL_FIELDS = (
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_output_tokens",
    "total_tokens",
)
REPLAY_PROBE_BYTES = 16 * 1024
_PARENT_THREAD = re.compile(rb'"parent_thread_id"\s*:\s*"([^"\\]+)"')


def _totals(usage: Any, where: str) -> list[int] | None:
    if not isinstance(usage, dict):
        return None
    values = [token_count(usage, name, where) for name in TOTAL_FIELDS]
    if values[4] == 0:
        values[4] = values[0] + values[2]
    return values


def _session_key_from_name(path: Path) -> str:
    # rollout-2025-01-10T09-00-00-<uuid>.jsonl: the last five dash groups are the uuid
    parts = path.stem.split("-")
    return "-".join(parts[-5:]) if len(parts) >= 6 else path.stem


def _subagent_head(handle: BinaryIO) -> bytes | None:
    """The first bytes of a subagent rollout (its `session_meta` names the thread that
    spawned it); None for any other rollout."""
    head = handle.read(REPLAY_PROBE_BYTES)
    return head if b"thread_spawn" in head else None


def spawned_from(path: Path) -> str | None:
    """The parent thread a subagent rollout's `session_meta` names; None for a top-level
    rollout or a file that cannot be read (the parser reports that one)."""
    try:
        with open(path, "rb") as handle:
            head = _subagent_head(handle)
    except OSError:
        return None
    if head is None:
        return None
    match = _PARENT_THREAD.search(head)
    return match.group(1).decode(errors="replace") if match else None


def session_trees(paths: Iterable[Path]) -> list[str]:
    """The root thread of each rollout's spawn tree, through every level of subagents among
    `paths`. A rollout's thread is known by its file name, as before its first line is read."""
    paths = list(paths)
    own = [_session_key_from_name(path) for path in paths]
    parent_of: dict[str, str] = {}
    for path, thread in zip(paths, own, strict=True):
        parent = spawned_from(path)
        if parent and parent != thread:
            parent_of[thread] = parent
    roots: list[str] = []
    for thread in own:
        seen = {thread}
        while thread in parent_of and parent_of[thread] not in seen:
            thread = parent_of[thread]
            seen.add(thread)
        roots.append(thread)
    return roots


def detect_replay_second(path: Path) -> str | None:
    """A subagent rollout starts with the parent's replayed `token_count` events, all
    stamped in the same second; that second, if the file is such a subagent rollout."""
    with open(path, "rb") as handle:
        if _subagent_head(handle) is None:
            return None
        handle.seek(0)
        first: str | None = None
        for raw in handle:
            if b'"token_count"' not in raw:
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            payload = obj.get("payload") if isinstance(obj, dict) else None
            if not isinstance(payload, dict) or not isinstance(payload.get("info"), dict):
                continue
            stamp = obj.get("timestamp")
            if not isinstance(stamp, str) or len(stamp) < 19:
                continue
            if first is None:
                first = stamp[:19]
                continue
            return first if stamp[:19] == first else None
    return None


class CodexRolloutParser(JsonlParser):
    # `"sessionId"`: on every line of a Claude Code transcript, to say so when one is read here
    parse_markers = (b'"session_meta"', b'"turn_context"', b'"token_count"', b'"call_id"',
                     b'"turn.completed"', b'"sessionId"')  # fmt: skip
    activity_marker = b'"payload"'

    def __init__(self, path: Path, state: dict[str, Any] | None) -> None:
        self.path = str(path)
        state = dict(state or {})
        self.session_key: str = state.get("session_key") or _session_key_from_name(path)
        self.parent_key: str | None = state.get("parent_key")
        self.model: str | None = state.get("model")
        self.provider: str = state.get("provider") or "openai"
        self.previous: list[int] | None = state.get("previous")
        self.segment: int = state.get("segment", 0)
        self.replay_second: str | None = state.get("replay_second")
        self.skipping_replay: bool = state.get("skipping_replay", False)
        if "session_key" not in state:  # first read of this file
            self.replay_second = detect_replay_second(path)
            self.skipping_replay = self.replay_second is not None
        self.pending_commits: dict[str, bool] = {}

    def state(self) -> dict[str, Any]:
        return {
            "session_key": self.session_key,
            "parent_key": self.parent_key,
            "model": self.model,
            "provider": self.provider,
            "previous": self.previous,
            "segment": self.segment,
            "replay_second": self.replay_second,
            "skipping_replay": self.skipping_replay,
        }

    def observe(self, at: datetime, batch: Batch) -> None:
        # messages, reasoning and agent events
        self._session(batch).observe(at)

    def _session(self, batch: Batch) -> Any:
        session = batch.session(self.session_key)
        if self.parent_key and not session.parent_key:
            session.parent_key = self.parent_key
            session.is_subagent = True
            session.subagent_key = self.session_key
        if session.source_path is None:
            session.source_path = self.path
        return session

    def handle_object(self, obj: dict[str, Any], offset: int, batch: Batch) -> int:
        if "sessionId" in obj and "payload" not in obj:
            return self.foreign("a Claude Code transcript", "tally ingest claude-code")
        line_type = obj.get("type")
        if line_type is not None and not isinstance(line_type, str):
            raise InvalidRecord(f"type must be text, got {line_type!r:.40}")
        if line_type == EXEC_TURN_COMPLETED and isinstance(obj.get("usage"), dict):
            raise InvalidRecord(EXEC_OUTPUT_REFUSED)
        payload = obj.get("payload")
        at = parse_timestamp(obj.get("timestamp"))
        if not isinstance(payload, dict):
            if line_type in {"session_meta", "turn_context", "event_msg", "response_item"}:
                raise InvalidRecord(f"{line_type} line without a payload object")
            return 0
        if line_type == "session_meta":
            self._session_meta(payload, at, offset, batch)
            return 0
        session = self._session(batch)
        session.observe(at)
        if line_type == "turn_context":
            model = optional_str(payload.get("model"))
            if model:
                self.model = model
            session.describe(at, optional_str(payload.get("cwd")), None, None)
        elif line_type == "event_msg" and payload.get("type") == "token_count":
            return self._token_count(obj, payload, offset, batch)
        elif line_type == "response_item":
            self._response_item(payload, at, batch)
        return 0

    def _session_meta(
        self, payload: dict[str, Any], at: datetime | None, offset: int, batch: Batch
    ) -> None:
        def refused(error: InvalidRecord, kept: str) -> None:
            """A bad id costs the line no more than itself: the session's times and place
            still load."""
            batch.reject(self.path, str(offset), f"{error}; {kept}",
                         orjson.dumps(payload, default=str)[:300])  # fmt: skip

        try:
            key = key_text(payload.get("id"), "session_meta.id")
        except InvalidRecord as error:
            key = None
            refused(error, "the session keeps the id its file name gives")
        if key:
            self.session_key = key
        source = payload.get("source")
        # "cli", "exec"...; or {"subagent": ...}: "review" and "compact" runs name no parent,
        # {"thread_spawn": {"parent_thread_id": ...}} does
        subagent = source.get("subagent") if isinstance(source, dict) else None
        spawn = subagent.get("thread_spawn") if isinstance(subagent, dict) else None
        if isinstance(spawn, dict):
            try:
                self.parent_key = key_text(spawn.get("parent_thread_id"), "parent_thread_id")
            except InvalidRecord as error:
                refused(error, "the session is kept without its parent")
        self.provider = optional_str(payload.get("model_provider")) or self.provider
        session = self._session(batch)
        started = parse_timestamp(payload.get("timestamp")) or at
        session.observe(started)
        git = payload.get("git") if isinstance(payload.get("git"), dict) else {}
        session.describe(
            started,
            optional_str(payload.get("cwd")),
            optional_str(git.get("branch")),
            optional_str(payload.get("cli_version")),
        )

    def _token_count(
        self, obj: dict[str, Any], payload: dict[str, Any], offset: int, batch: Batch
    ) -> int:
        info = payload.get("info")
        if info is None:
            return 0  # a rate-limit-only event
        if not isinstance(info, dict):
            raise InvalidRecord("token_count payload.info is not an object")
        occurred_at = require_timestamp(obj.get("timestamp"))
        total = _totals(info.get("total_token_usage"), "info.total_token_usage")
        last = _totals(info.get("last_token_usage"), "info.last_token_usage")
        model = optional_str(info.get("model")) or self.model
        if model:
            self.model = model
        if self.skipping_replay:
            stamp = obj.get("timestamp")
            if isinstance(stamp, str) and stamp[:19] == self.replay_second:
                if total is not None:
                    self.previous = total
                return 0
            self.skipping_replay = False
        if total is not None:
            delta = self._delta(total, last)
            request_id = f"{self.segment}:{total[4]}"
        elif last is not None:
            delta, request_id = last, f"offset:{offset}"
        else:
            return 0
        if not any(delta[:4]):
            return 0
        input_total, cached, output, reasoning = delta[0], delta[1], delta[2], delta[3]
        cached = min(cached, input_total)
        batch.add_usage(
            UsageRecord(
                session_key=self.session_key,
                message_id=self.session_key,
                request_id=request_id,
                occurred_at=occurred_at,
                provider=self.provider,
                model=self.model or "unknown",
                input_tokens=input_total - cached,
                output_tokens=output,
                reasoning_tokens=min(reasoning, output) if output else reasoning,
                cache_read_tokens=cached,
                origin="rollout",
                source_path=self.path,
                source_offset=offset,
            )
        )
        return 1

    def _delta(self, total: list[int], last: list[int] | None) -> list[int]:
        previous = self.previous
        self.previous = total
        if previous is None:
            return total
        if total[4] < previous[4]:
            # The cumulative counter restarted (a resumed process): a new segment.
            self.segment += 1
            return last if last is not None else total
        return [max(0, now - before) for now, before in zip(total, previous, strict=True)]

    def _response_item(self, payload: dict[str, Any], at: datetime | None, batch: Batch) -> None:
        item_type = payload.get("type")
        if item_type is not None and not isinstance(item_type, str):
            raise InvalidRecord(f"response_item payload.type must be text, got {item_type!r:.40}")
        call_id = key_text(payload.get("call_id"), "call_id")
        if call_id is None:
            return
        if item_type in {"function_call", "custom_tool_call"}:
            name = key_text(payload.get("name"), "name")
            arguments = payload.get("arguments") if item_type == "function_call" else None
            text_input = payload.get("input") if isinstance(payload.get("input"), str) else ""
            command = ""
            parsed: Any = {}
            if isinstance(arguments, str):
                try:
                    parsed = orjson.loads(arguments)
                except orjson.JSONDecodeError:
                    parsed = {}
                raw_command = parsed.get("command") if isinstance(parsed, dict) else None
                if isinstance(raw_command, list):
                    command = " ".join(str(part) for part in raw_command)
                elif isinstance(raw_command, str):
                    command = raw_command
            self.pending_commits[call_id] = "git commit" in command
            batch.add_tool_call(
                ToolCallRecord(
                    call_key=call_id,
                    session_key=self.session_key,
                    tool_name=name,
                    mcp_server=mcp_server_of(name),
                    started_at=at,
                    file_paths=patched_files(text_input or command),
                    issue_refs=issue_refs_in(parsed),
                    source_path=self.path,
                )
            )
        elif item_type in {"function_call_output", "custom_tool_call_output"}:
            output, success = _output_text(payload.get("output"))
            makes_commit = self.pending_commits.pop(call_id, None)
            commits = commit_hashes_in(output) if makes_commit is not False else []
            batch.add_tool_call(
                ToolCallRecord(
                    call_key=call_id,
                    session_key=self.session_key,
                    ended_at=at,
                    success=success,
                    error_message=output[:500] if success is False else None,
                    result_chars=len(output),
                    result_tokens_estimate=estimate_tokens(len(output)),
                    commit_hashes=commits,
                    source_path=self.path,
                )
            )


def _output_text(output: Any) -> tuple[str, bool | None]:
    """The tool's output text and whether it succeeded (from `metadata.exit_code`)."""
    if isinstance(output, dict):
        text = output.get("output") if isinstance(output.get("output"), str) else ""
        success = output.get("success")
        return text, success if isinstance(success, bool) else None
    if not isinstance(output, str):
        return "", None
    try:
        parsed = orjson.loads(output) if output.startswith("{") else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("output"), str):
        metadata = parsed.get("metadata") if isinstance(parsed.get("metadata"), dict) else {}
        exit_code = metadata.get("exit_code")
        success = exit_code == 0 if isinstance(exit_code, int) else True
        return parsed["output"], success
    return output, True
