"""What agents and their hooks send: one model per record kind, keyed like file ingestion
(usage by source + message id + request id, tool calls by source + call id, runs by their
upstream id, hints by the client's idempotency key)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, model_validator

from api.batch import RecordModel
from api.decimals import DecimalText
from schemas.limits import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    MAX_COUNT,
    MAX_DURATION_MS,
    MAX_KEY_CHARS,
)

Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
# with a UTC offset, from 2000 up to (not including) 2100
Timestamp = Annotated[AwareDatetime, Field(ge=EARLIEST_TIMESTAMP, lt=LATEST_TIMESTAMP)]
Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY_CHARS)]
SourceName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
ParentSession = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=MAX_KEY_CHARS,
        description="For a subagent's session: the session (same source) that spawned it; "
        "its requests then count under that session's tree, as for transcripts.",
    ),
]
AgentRef = Annotated[
    str | None,
    Field(
        default=None,
        max_length=MAX_KEY_CHARS,
        description="The agent (upstream id or name) for service keys; agent keys write as their "
        "own agent.",
    ),
]


class UsageEventIn(RecordModel):
    """One model request."""

    source: SourceName = Field(
        "api", description="Where the request was made: claude_code, codex, api, ..."
    )
    session_id: Key
    message_id: Key
    request_id: Key
    occurred_at: Timestamp
    provider: Annotated[str, Field(min_length=1, max_length=100)]
    model: Annotated[str, Field(min_length=1, max_length=MAX_KEY_CHARS)]
    input_tokens: Count = Field(0, description="Uncached input.")
    output_tokens: Count = 0
    reasoning_tokens: Count = Field(0, description="Part of output_tokens.")
    cache_read_tokens: Count = 0
    cache_write_5m_tokens: Count = 0
    cache_write_1h_tokens: Count = 0
    web_search_requests: Count = 0
    service_tier: Annotated[str | None, Field(max_length=100)] = None
    reported_cost_usd: (
        Annotated[Decimal, Field(ge=0, le=10**9, decimal_places=12), DecimalText()] | None
    ) = None
    project_path: Annotated[str | None, Field(max_length=4096)] = None
    parent_session_id: ParentSession = None
    agent: AgentRef = None

    @model_validator(mode="after")
    def reasoning_is_part_of_output(self) -> UsageEventIn:
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError("reasoning_tokens is part of output_tokens and cannot exceed it")
        return self


class ToolCallIn(RecordModel):
    """One tool invocation, or the half of it a reporter saw: its start (`tool_name`,
    `started_at`), its end (`ended_at` and the outcome), or both."""

    source: SourceName = "api"
    session_id: Key
    call_id: Key
    tool_name: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=MAX_KEY_CHARS,
            description="Required with started_at; the half that reports only the end may "
            "leave it to the start's.",
        ),
    ] = None
    mcp_server: Annotated[str | None, Field(max_length=MAX_KEY_CHARS)] = None
    started_at: Timestamp | None = None
    ended_at: Timestamp | None = None
    duration_ms: Annotated[int | None, Field(ge=0, le=MAX_DURATION_MS)] = None
    success: bool | None = None
    error_message: Annotated[str | None, Field(max_length=10_000)] = None
    result_chars: Annotated[int | None, Field(ge=0, le=MAX_COUNT)] = None
    result_tokens_estimate: Annotated[int | None, Field(ge=0, le=MAX_COUNT)] = None
    file_paths: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=1000)] = (
        Field(default_factory=list)
    )
    commit_hashes: Annotated[
        list[Annotated[str, Field(pattern=r"^[0-9a-f]{7,40}$")]], Field(max_length=100)
    ] = Field(default_factory=list)
    issue_refs: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=MAX_KEY_CHARS)]],
        Field(max_length=100, description="Issues the call acted on (id, identifier, #N)."),
    ] = Field(default_factory=list)
    parent_session_id: ParentSession = None
    agent: AgentRef = None

    @model_validator(mode="after")
    def a_start_or_an_end(self) -> ToolCallIn:
        if self.started_at is None:
            if self.ended_at is None:
                raise ValueError("a call needs started_at, or ended_at for the half that "
                                 "reports its end")  # fmt: skip
        elif self.tool_name is None:
            raise ValueError("tool_name is required with started_at")
        elif self.ended_at is not None and self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        return self

    @property
    def seen_at(self) -> datetime:
        """When the reporter saw the call: its start, else its end."""
        return self.started_at or self.ended_at  # type: ignore[return-value]


class RunEventIn(RecordModel):
    seq: Annotated[int, Field(ge=0, le=10**9)]
    event_type: Annotated[str, Field(min_length=1, max_length=100)]
    stream: Literal["system", "stdout", "stderr"] | None = None
    level: Literal["info", "warn", "error"] | None = None
    message: Annotated[str | None, Field(max_length=100_000)] = None
    payload: dict[str, Any] | None = None
    occurred_at: Timestamp


class HeartbeatRunIn(RecordModel):
    """One agent execution, with the events of its timeline (sent again as it progresses:
    the run is updated, events already stored are kept)."""

    run_id: Key
    status: Literal[
        "queued",
        "scheduled_retry",
        "running",
        "succeeded",
        "interrupted",
        "failed",
        "cancelled",
        "timed_out",
    ]
    issue: Annotated[
        str | None,
        Field(
            max_length=MAX_KEY_CHARS, description="Issue id or identifier (PAP-12) the run serves."
        ),
    ] = None
    adapter_session_id: Annotated[str | None, Field(max_length=MAX_KEY_CHARS)] = None
    invocation_source: Annotated[str | None, Field(max_length=100)] = None
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    error: Annotated[str | None, Field(max_length=10_000)] = None
    error_code: Annotated[str | None, Field(max_length=200)] = None
    exit_code: int | None = None
    usage: dict[str, Any] | None = None
    events: Annotated[list[RunEventIn], Field(max_length=10_000)] = Field(default_factory=list)
    agent: AgentRef = None

    @model_validator(mode="after")
    def finishes_after_it_starts(self) -> HeartbeatRunIn:
        if self.started_at and self.finished_at and self.finished_at < self.started_at:
            raise ValueError("finished_at is before started_at")
        return self


class AttributionHintIn(RecordModel):
    """ "This session (or agent) serves this issue from `valid_from`"."""

    hint_id: Key = Field(description="The client's idempotency key for this hint.")
    issue: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_KEY_CHARS,
            description="Issue id or identifier (PAP-12, #12 with project).",
        ),
    ]
    session_id: Annotated[str | None, Field(max_length=MAX_KEY_CHARS)] = None
    valid_from: Timestamp
    valid_to: Timestamp | None = None
    note: Annotated[str | None, Field(max_length=10_000)] = None
    agent: AgentRef = None

    @model_validator(mode="after")
    def a_window(self) -> AttributionHintIn:
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self


RECORD_MODELS = (UsageEventIn, ToolCallIn, RunEventIn, HeartbeatRunIn, AttributionHintIn)
