"""Claude Code transcripts (`~/.claude/projects/**.jsonl`) into usage, sessions and tool calls.

Follows `reference/agent-logs.md` §1: one record per API request keyed on
(`message.id`, `requestId`), the most complete copy kept (the loader applies the same rule
across files and runs), `<synthetic>` lines dropped, `agent_progress` copies and subagent
files read and deduplicated together, the `/btw` sidechain replays dropped in the loader.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from ingestion.adapters.base import JsonlParser
from ingestion.adapters.common import (
    InvalidRecord,
    commit_hashes_in,
    decimal_string,
    edited_files,
    estimate_tokens,
    issue_refs_in,
    key_text,
    mcp_server_of,
    optional_str,
    parse_timestamp,
    require_timestamp,
    result_text,
    runs_git_commit,
    token_count,
)
from ingestion.adapters.records import ToolCallRecord, UsageRecord
from ingestion.batch import Batch

SOURCE = "claude_code"
_TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)
PROVIDER = "anthropic"
SYNTHETIC_MODEL = "<synthetic>"


def subagent_parent(path: Path) -> Path | None:
    """The session directory a subagent transcript lives in (<session>/subagents/<agent>.jsonl),
    known by the file's own place whatever directory is read; None for any other file."""
    if path.parent.name == "subagents" and path.parent.parent.name:
        return path.parent.parent
    return None


def session_trees(paths: Iterable[Path]) -> list[str]:
    """The session tree of each transcript: <session>.jsonl and <session>/subagents/*.jsonl
    share one, whatever directory is read."""
    return [str(subagent_parent(path) or path.with_suffix("")) for path in paths]


class FileContext:
    """What a transcript's place in the tree says about its sessions."""

    def __init__(self, path: Path, root: Path) -> None:
        relative = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
        parts = relative.parts
        self.path = str(path)
        self.parent_key: str | None = None
        self.subagent_key: str | None = None
        parent = subagent_parent(path)
        if parent is not None:
            self.parent_key = parent.name
            self.subagent_key = path.stem
            self.session_key = f"{self.parent_key}:{path.stem}"
        elif len(parts) >= 3:
            # <project>/<session>/<file>.jsonl: the directory names the session (as ccusage)
            self.session_key = parts[-2]
        else:
            self.session_key = path.stem
        self.origin = "subagent_file" if self.parent_key else "transcript"


class ClaudeTranscriptParser(JsonlParser):
    """Parses one transcript's lines into a batch. Holds no state between runs: every
    request is keyed by its ids, so reading from any offset is safe."""

    # `"session_meta"`: a Codex rollout's first line, to say so when one is read here
    parse_markers = (b'"usage"', b'"tool_use"', b'"tool_result"', b'"session_meta"')
    activity_marker = b'"sessionId"'

    def __init__(self, context: FileContext) -> None:
        self.context = context
        self.path = context.path
        self.pending_tools: dict[str, tuple[str, bool]] = {}  # tool_use id -> (name, commits?)

    def state(self) -> dict[str, Any]:
        return {}

    def observe(self, at: datetime, batch: Batch) -> None:
        # a prompt, snapshot or system line
        context = self.context
        self._session(batch, context.session_key, context.parent_key, context.subagent_key).observe(
            at
        )

    # -- line kinds ---------------------------------------------------------------------------
    def handle_object(self, obj: dict[str, Any], offset: int, batch: Batch) -> int:
        if isinstance(obj.get("payload"), dict) and "sessionId" not in obj:
            return self.foreign("a Codex rollout", "tally ingest codex")
        line_type = obj.get("type")
        if line_type == "assistant" or (line_type is None and "message" in obj):
            return self._assistant(
                obj, offset, batch, self.context.session_key, self.context.origin
            )
        if line_type == "user":
            self._user(obj, offset, batch)
        elif line_type == "progress":
            return self._progress(obj, offset, batch)
        else:
            self._observe(batch, self.context.session_key, obj)
        return 0

    def _session(self, batch: Batch, key: str, parent: str | None, subagent: str | None) -> Any:
        session = batch.session(key)
        if parent and not session.parent_key:
            session.parent_key = parent
            session.is_subagent = True
            session.subagent_key = subagent
        if session.source_path is None:
            session.source_path = self.context.path
        return session

    def _observe(self, batch: Batch, key: str, obj: dict[str, Any]) -> datetime | None:
        at = parse_timestamp(obj.get("timestamp"))
        if at is None and "sessionId" not in obj:
            return None  # summary, file-history-snapshot: no session activity
        session = self._session(batch, key, self.context.parent_key, self.context.subagent_key)
        session.observe(at)
        described = session.described_at
        if session.project_path is None or (
            at is not None and (described is None or at <= described)
        ):
            session.describe(
                at,
                optional_str(obj.get("cwd")),
                optional_str(obj.get("gitBranch")),
                optional_str(obj.get("version")),
            )
        return at

    def _assistant(
        self, obj: dict[str, Any], offset: int, batch: Batch, session_key: str, origin: str
    ) -> int:
        message = obj.get("message")
        if not isinstance(message, dict):
            raise InvalidRecord("assistant line without a message object")
        model = message.get("model")
        if model == SYNTHETIC_MODEL:
            self._observe(batch, session_key, obj)
            return 0
        occurred_at = self._observe(batch, session_key, obj)
        content = message.get("content")
        if isinstance(content, list):
            self._tool_uses(content, offset, session_key, batch, occurred_at, message)
        usage = message.get("usage")
        if usage is None:
            return 0
        if not isinstance(usage, dict):
            raise InvalidRecord("message.usage is not an object")
        if not isinstance(model, str) or not model:
            if model is None or model == "":
                raise InvalidRecord("message.model is missing")
            raise InvalidRecord(f"message.model must be text, got {model!r:.40}")
        if occurred_at is None:
            occurred_at = require_timestamp(obj.get("timestamp"))
        if self._repeats_a_better_copy(obj, message, usage, occurred_at, batch, origin):
            return 1
        batch.add_usage(
            self._usage(obj, message, usage, model, occurred_at, offset, session_key, origin)
        )
        return 1

    def _repeats_a_better_copy(
        self,
        obj: dict[str, Any],
        message: dict[str, Any],
        usage: dict[str, Any],
        occurred_at: datetime,
        batch: Batch,
        origin: str,
    ) -> bool:
        """A later content-block line of a response already in the batch, with no more
        tokens: only its time can matter. Saves building a record for most lines."""
        key = (message.get("id"), obj.get("requestId"))
        if not (isinstance(key[0], str) and isinstance(key[1], str)):
            return False  # let the full path key or reject it
        existing = batch.usage.get(key)
        if existing is None or existing.origin != origin or "costUSD" in obj:
            return False
        total = 0
        for name in _TOKEN_FIELDS:
            value = usage.get(name, 0)
            if type(value) is not int or value < 0:
                return False  # let the full path reject it
            total += value
        if total > existing.total_tokens or (
            total == existing.total_tokens
            and usage.get("output_tokens", 0) > existing.output_tokens
        ):
            return False
        if usage.get("speed") is not None and existing.speed is None:
            return False
        if occurred_at < existing.occurred_at:
            existing.occurred_at = occurred_at
        batch.merged_in_batch += 1
        return True

    def _usage(
        self,
        obj: dict[str, Any],
        message: dict[str, Any],
        usage: dict[str, Any],
        model: str,
        occurred_at: datetime,
        offset: int,
        session_key: str,
        origin: str,
    ) -> UsageRecord:
        input_tokens = token_count(usage, "input_tokens", "usage")
        output_tokens = token_count(usage, "output_tokens", "usage")
        cache_read = token_count(usage, "cache_read_input_tokens", "usage")
        cache_write = token_count(usage, "cache_creation_input_tokens", "usage")
        split = usage.get("cache_creation")
        write_5m, write_1h = cache_write, 0
        if isinstance(split, dict):
            write_5m = token_count(split, "ephemeral_5m_input_tokens", "usage.cache_creation")
            write_1h = token_count(split, "ephemeral_1h_input_tokens", "usage.cache_creation")
            # Writes the split does not account for are priced as 5m, like a lumped count.
            write_5m += max(0, cache_write - write_5m - write_1h)
        server_tools = usage.get("server_tool_use")
        web_search = 0
        if isinstance(server_tools, dict):
            web_search = token_count(server_tools, "web_search_requests", "usage.server_tool_use")
        message_id = key_text(message.get("id"), "message.id")
        request_id = key_text(obj.get("requestId"), "requestId")
        if message_id is None or request_id is None:
            # Legacy lines without ids: key on the line's content so re-reads stay idempotent.
            digest = hashlib.sha1(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()
            message_id = message_id or f"line:{digest[:24]}"
            request_id = request_id or ""
        return UsageRecord(
            session_key=session_key,
            message_id=message_id,
            request_id=request_id,
            occurred_at=occurred_at,
            provider=PROVIDER,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read,
            cache_write_5m_tokens=write_5m,
            cache_write_1h_tokens=write_1h,
            web_search_requests=web_search,
            service_tier=optional_str(usage.get("service_tier")),
            speed=optional_str(usage.get("speed")),
            reported_cost_usd=decimal_string(obj.get("costUSD")),
            is_sidechain=obj.get("isSidechain") is True,
            origin=origin,
            source_path=self.context.path,
            source_offset=offset,
        )

    def _read_blocks(
        self,
        content: list[Any],
        kind: str,
        offset: int,
        batch: Batch,
        read: Callable[[dict[str, Any]], None],
    ) -> None:
        """`read` each content block of `kind`. A block it refuses is rejected alone: the rest
        of the line (its usage, the other blocks) is kept."""
        for index, block in enumerate(content):
            if not isinstance(block, dict) or block.get("type") != kind:
                continue
            try:
                read(block)
            except InvalidRecord as error:
                batch.reject(
                    self.context.path, str(offset),
                    f"content[{index}] ({kind}) refused, the rest of the line kept: {error}",
                    orjson.dumps(block),
                )  # fmt: skip

    def _tool_uses(
        self,
        content: list[Any],
        offset: int,
        session_key: str,
        batch: Batch,
        started_at: datetime | None,
        message: dict[str, Any],
    ) -> None:
        self._read_blocks(
            content, "tool_use", offset, batch,
            lambda block: self._tool_use(block, session_key, batch, started_at, message),
        )  # fmt: skip

    def _tool_use(
        self,
        block: dict[str, Any],
        session_key: str,
        batch: Batch,
        started_at: datetime | None,
        message: dict[str, Any],
    ) -> None:
        call_id = key_text(block.get("id"), "tool_use.id")
        if call_id is None:
            raise InvalidRecord("tool_use without an id")
        name = key_text(block.get("name"), "tool_use.name")
        tool_input = block.get("input") if isinstance(block.get("input"), dict) else {}
        self.pending_tools[call_id] = (name or "", runs_git_commit(tool_input))
        batch.add_tool_call(
            ToolCallRecord(
                call_key=call_id,
                session_key=session_key,
                message_id=optional_str(message.get("id")),
                tool_name=name,
                mcp_server=mcp_server_of(name),
                started_at=started_at,
                file_paths=edited_files(name, tool_input),
                issue_refs=issue_refs_in(tool_input),
                source_path=self.context.path,
            )
        )

    def _user(self, obj: dict[str, Any], offset: int, batch: Batch) -> None:
        ended_at = self._observe(batch, self.context.session_key, obj)
        message = obj.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            return
        structured = obj.get("toolUseResult")
        self._read_blocks(
            content, "tool_result", offset, batch,
            lambda block: self._tool_result(block, structured, ended_at, batch),
        )  # fmt: skip

    def _tool_result(
        self,
        block: dict[str, Any],
        structured: Any,
        ended_at: datetime | None,
        batch: Batch,
    ) -> None:
        call_id = key_text(block.get("tool_use_id"), "tool_result.tool_use_id")
        if call_id is None:
            raise InvalidRecord("tool_result without a tool_use_id")
        text = result_text(block.get("content"))
        is_error = block.get("is_error") is True
        _, makes_commit = self.pending_tools.pop(call_id, ("", None))
        commits: list[str] = []
        looks_like_shell = isinstance(structured, dict) and "stdout" in structured
        if makes_commit or (makes_commit is None and looks_like_shell):
            commits = commit_hashes_in(text)
        batch.add_tool_call(
            ToolCallRecord(
                call_key=call_id,
                session_key=self.context.session_key,
                ended_at=ended_at,
                success=not is_error,
                error_message=text[:500] if is_error else None,
                result_chars=len(text),
                result_tokens_estimate=estimate_tokens(len(text)),
                commit_hashes=commits,
                source_path=self.context.path,
            )
        )

    def _progress(self, obj: dict[str, Any], offset: int, batch: Batch) -> int:
        self._observe(batch, self.context.session_key, obj)
        data = obj.get("data")
        if not isinstance(data, dict) or data.get("type") != "agent_progress":
            return 0
        nested = data.get("message")
        if not isinstance(nested, dict) or nested.get("type") != "assistant":
            return 0
        agent_id = optional_str(data.get("agentId")) or optional_str(nested.get("agentId"))
        session_key = self.context.session_key
        if agent_id and self.context.parent_key is None:
            subagent = f"agent-{agent_id}"
            session_key = f"{self.context.session_key}:{subagent}"
            self._session(batch, session_key, self.context.session_key, subagent)
        return self._assistant(nested, offset, batch, session_key, "agent_progress")
