"""The typed records every adapter emits, and how two copies of one record merge.

Adapters turn raw lines into these; the loader writes them. Merges here mirror the SQL
merges in `ingestion/loader.py`, so deduplicating inside a batch and across batches give
the same result in any order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

# Which copy of a Claude request wins a tie on tokens: a subagent's own file over the
# `agent_progress` copy nested in its parent's file.
ORIGIN_RANK = {"subagent_file": 2, "transcript": 1, "rollout": 1, "api": 1, "agent_progress": 0}


@dataclass(slots=True)
class UsageRecord:
    session_key: str
    message_id: str
    request_id: str
    occurred_at: datetime
    provider: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    web_search_requests: int = 0
    service_tier: str | None = None
    speed: str | None = None
    reported_cost_usd: str | None = None  # decimal string, as the tool reported it
    is_sidechain: bool = False
    origin: str = "transcript"
    source_path: str = ""
    source_offset: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.message_id, self.request_id)

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_5m_tokens
            + self.cache_write_1h_tokens
        )

    def rank(self) -> tuple[int, int, float, bool, int]:
        """Most complete copy first: tokens, then output, reported cost, speed, origin."""
        cost = float(self.reported_cost_usd) if self.reported_cost_usd else 0.0
        return (
            self.total_tokens,
            self.output_tokens,
            cost,
            self.speed is not None,
            ORIGIN_RANK.get(self.origin, 1),
        )

    def beats(self, other: UsageRecord) -> bool:
        mine, theirs = self.rank(), other.rank()
        if mine != theirs:
            return mine > theirs
        return (self.source_path, self.source_offset) < (other.source_path, other.source_offset)


def merge_usage(existing: UsageRecord, incoming: UsageRecord) -> UsageRecord:
    """Keep the whole winning line; only the time is the group's earliest."""
    earliest = min(existing.occurred_at, incoming.occurred_at)
    winner = incoming if incoming.beats(existing) else existing
    winner.occurred_at = earliest
    return winner


@dataclass(slots=True)
class SessionRecord:
    session_key: str
    parent_key: str | None = None
    is_subagent: bool = False
    subagent_key: str | None = None
    project_path: str | None = None
    git_branch: str | None = None
    client_version: str | None = None
    first_at: datetime | None = None
    last_at: datetime | None = None
    source_path: str | None = None
    # when the descriptive fields were observed: the earliest observation wins
    described_at: datetime | None = None

    def observe(self, at: datetime | None) -> None:
        if at is None:
            return
        if self.first_at is None or at < self.first_at:
            self.first_at = at
        if self.last_at is None or at > self.last_at:
            self.last_at = at

    def describe(
        self,
        at: datetime | None,
        project_path: str | None,
        git_branch: str | None,
        client_version: str | None,
    ) -> None:
        """The session is described by the earliest line that names its working directory
        (ties broken by the values): one total order, so any split of a session into pieces
        and any load order give the same description. The loader applies the same rule."""
        if not project_path:
            return
        candidate = _description_rank(at, project_path, git_branch, client_version)
        if self.project_path is None or candidate < _description_rank(
            self.described_at, self.project_path, self.git_branch, self.client_version
        ):
            self.described_at = at
            self.project_path = project_path
            self.git_branch = git_branch
            self.client_version = client_version

    def merge(self, other: SessionRecord) -> None:
        self.observe(other.first_at)
        self.observe(other.last_at)
        self.describe(
            other.described_at, other.project_path, other.git_branch, other.client_version
        )
        self.parent_key = self.parent_key or other.parent_key
        self.is_subagent = self.is_subagent or other.is_subagent
        self.subagent_key = self.subagent_key or other.subagent_key
        self.source_path = self.source_path or other.source_path


@dataclass(slots=True)
class ToolCallRecord:
    """One side (or both) of a tool call; the `tool_use` and `tool_result` merge by key."""

    call_key: str
    session_key: str
    message_id: str | None = None
    tool_name: str | None = None
    mcp_server: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    success: bool | None = None
    error_message: str | None = None
    result_chars: int | None = None
    result_tokens_estimate: int | None = None
    file_paths: list[str] = field(default_factory=list)
    commit_hashes: list[str] = field(default_factory=list)
    issue_refs: list[str] = field(default_factory=list)
    source_path: str | None = None

    def merge(self, other: ToolCallRecord) -> None:
        self.message_id = self.message_id or other.message_id
        self.tool_name = self.tool_name or other.tool_name
        self.mcp_server = self.mcp_server or other.mcp_server
        self.started_at = _earliest(self.started_at, other.started_at)
        self.ended_at = _earliest(self.ended_at, other.ended_at)
        self.success = self.success if self.success is not None else other.success
        self.error_message = self.error_message or other.error_message
        self.result_chars = _largest(self.result_chars, other.result_chars)
        self.result_tokens_estimate = _largest(
            self.result_tokens_estimate, other.result_tokens_estimate
        )
        self.file_paths = sorted(set(self.file_paths) | set(other.file_paths))
        self.commit_hashes = sorted(set(self.commit_hashes) | set(other.commit_hashes))
        self.issue_refs = sorted(set(self.issue_refs) | set(other.issue_refs))
        self.source_path = self.source_path or other.source_path


@dataclass(slots=True)
class RejectRecord:
    location: str
    position: str
    reason: str
    excerpt: bytes


_NEVER = datetime.max.replace(tzinfo=UTC)


def _description_rank(
    at: datetime | None, path: str, branch: str | None, version: str | None
) -> tuple[datetime, str, str, str]:
    return (at or _NEVER, path, branch or "", version or "")


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _largest(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
