"""Execution: agent sessions, the model requests and tool calls they made, heartbeat runs,
and the hints that say which work item a session serves."""

from __future__ import annotations

from datetime import date

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import Text

from schemas.canonical.base import (
    Base,
    BigId,
    CreatedAt,
    Json,
    OptionalJson,
    OptionalMoney,
    OptionalTimestamp,
    Timestamp,
    Tokens,
    company_fk,
    company_of_session,
)


class AgentSession(Base):
    """One agent conversation: a Claude Code session, a subagent run inside it, a Codex
    rollout. `session_key` is the upstream id; subagents point at their parent and root."""

    __tablename__ = "agent_sessions"
    __table_args__ = (
        UniqueConstraint("company_id", "source", "session_key"),
        Index("ix_agent_sessions_root_session_id", "root_session_id"),
        Index("ix_agent_sessions_parent_session_id", "parent_session_id"),
        Index("ix_agent_sessions_first_activity_at", "first_activity_at"),
    )

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk(index=False)
    source: Mapped[str]  # claude_code, codex, api, paperclip, pigeon
    session_key: Mapped[str]
    parent_session_id: Mapped[int | None] = mapped_column(
        ForeignKey("agent_sessions.id", ondelete="SET NULL")
    )
    root_session_id: Mapped[int | None] = mapped_column(
        ForeignKey("agent_sessions.id", ondelete="SET NULL")
    )
    is_subagent: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    subagent_key: Mapped[str | None]  # Claude agentId, Codex thread id
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    agent_link: Mapped[str | None]  # how agent_id was found: heartbeat-run, mcp-session, ...
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    project_link: Mapped[str | None]  # how project_id was found: workspace-path, repo, ...
    project_path: Mapped[str | None]  # the session's cwd
    git_branch: Mapped[str | None]
    client_version: Mapped[str | None]
    first_activity_at: Mapped[OptionalTimestamp]
    last_activity_at: Mapped[OptionalTimestamp]
    described_at: Mapped[OptionalTimestamp]  # time of the line the description comes from
    source_path: Mapped[str | None]  # file the session was read from
    attributes: Mapped[Json]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class TokenUsageEvent(Base):
    """One model request, deduplicated. Tokens use one split for every provider:
    `input_tokens` is uncached input only; `reasoning_tokens` is part of `output_tokens`.
    `reported_cost_usd` is what the tool itself reported (e.g. costUSD), kept as reported."""

    __tablename__ = "token_usage_events"
    __table_args__ = (
        UniqueConstraint("company_id", "source", "message_id", "request_id"),
        Index("ix_token_usage_events_occurred_at", "occurred_at"),
        Index("ix_token_usage_events_session_id_occurred_at", "session_id", "occurred_at"),
        # the few per-session rollups (schemas/usage_rules.py), found without a scan
        Index(
            "ix_token_usage_events_session_rollups",
            "session_id",
            postgresql_where=text("origin = 'session_rollup'"),
        ),
        # the requests posted over the API, which the pricing check looks up elsewhere
        Index(
            "ix_token_usage_events_posted",
            "occurred_at",
            postgresql_where=text("origin = 'api'"),
        ),
        CheckConstraint(
            "input_tokens >= 0 AND output_tokens >= 0 AND reasoning_tokens >= 0 "
            "AND cache_read_tokens >= 0 AND cache_write_5m_tokens >= 0 "
            "AND cache_write_1h_tokens >= 0 AND web_search_requests >= 0",
            name="non_negative_tokens",
        ),
    )

    id: Mapped[BigId]
    company_id: Mapped[int] = company_of_session()
    session_id: Mapped[int] = mapped_column(
        ForeignKey("agent_sessions.id", ondelete="CASCADE"), nullable=False
    )
    source: Mapped[str]
    message_id: Mapped[str]
    request_id: Mapped[str]
    occurred_at: Mapped[Timestamp]
    provider: Mapped[str]
    model: Mapped[str]
    input_tokens: Mapped[Tokens]
    output_tokens: Mapped[Tokens]
    reasoning_tokens: Mapped[Tokens]
    cache_read_tokens: Mapped[Tokens]
    cache_write_5m_tokens: Mapped[Tokens]
    cache_write_1h_tokens: Mapped[Tokens]
    web_search_requests: Mapped[Tokens]
    service_tier: Mapped[str | None]
    speed: Mapped[str | None]
    reported_cost_usd: Mapped[OptionalMoney]
    is_sidechain: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    origin: Mapped[str]  # transcript, agent_progress, subagent_file, rollout, api
    heartbeat_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("heartbeat_runs.id", ondelete="SET NULL")
    )
    source_path: Mapped[str | None]
    source_offset: Mapped[int | None]
    # provenance: the run that wrote the row last (runs are kept; no per-row check needed)
    ingestion_run_id: Mapped[int | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class UsageDayDelta(Base):
    """A signed change of one UTC day's stored usage: requests and tokens (all categories) a
    statement added to `token_usage_events` or took away. Triggers append one row per day
    each statement changed (migration 0006) and ingestion folds them into one row per day;
    the sum per day equals that day's events, without per-session rollups (origin
    `session_rollup`), which `CanonicalStore.daily_totals` adds where they count."""

    __tablename__ = "usage_day_deltas"

    id: Mapped[BigId]
    day: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    requests: Mapped[int] = mapped_column(BigInteger, nullable=False)
    input_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)
    output_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)
    cache_write_5m_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)
    cache_write_1h_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)


class ToolCall(Base):
    """One tool invocation: the `tool_use` and its `tool_result`, merged whichever is read
    first. `duration_ms` is derived from both ends when both are known."""

    __tablename__ = "tool_calls"
    __table_args__ = (
        UniqueConstraint("company_id", "source", "call_key"),
        Index("ix_tool_calls_session_id_started_at", "session_id", "started_at"),
        Index("ix_tool_calls_tool_name", "tool_name"),
    )

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk(index=False)
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("agent_sessions.id", ondelete="CASCADE")
    )
    source: Mapped[str]
    call_key: Mapped[str]  # tool_use_id / call_id
    message_id: Mapped[str | None]  # the model response that issued the call
    tool_name: Mapped[str | None]
    mcp_server: Mapped[str | None]
    started_at: Mapped[OptionalTimestamp]
    ended_at: Mapped[OptionalTimestamp]
    duration_ms: Mapped[int | None]
    success: Mapped[bool | None] = mapped_column(Boolean)
    error_message: Mapped[str | None]
    result_chars: Mapped[int | None]
    result_tokens_estimate: Mapped[int | None]
    file_paths: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    commit_hashes: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default="{}"
    )
    # issues the call's arguments name (an upstream id, `PAP-12`, `#12`): the session touched
    # them
    issue_refs: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    source_path: Mapped[str | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class HeartbeatRun(Base):
    """One agent execution (a Paperclip heartbeat run, or one reported over the API)."""

    __tablename__ = "heartbeat_runs"
    __table_args__ = (
        UniqueConstraint("company_id", "source", "external_id"),
        Index("ix_heartbeat_runs_agent_id_started_at", "agent_id", "started_at"),
    )

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    source: Mapped[str]
    external_id: Mapped[str]
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="SET NULL"))
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("agent_sessions.id", ondelete="SET NULL")
    )
    adapter_session_key: Mapped[str | None]
    session_link: Mapped[str | None]  # how session_id was found: adapter-session-id, overlap
    status: Mapped[str]
    invocation_source: Mapped[str | None]
    started_at: Mapped[OptionalTimestamp]
    finished_at: Mapped[OptionalTimestamp]
    error: Mapped[str | None]
    error_code: Mapped[str | None]
    exit_code: Mapped[int | None]
    usage: Mapped[OptionalJson]
    result: Mapped[OptionalJson]
    context: Mapped[OptionalJson]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class HeartbeatRunEvent(Base):
    __tablename__ = "heartbeat_run_events"
    __table_args__ = (UniqueConstraint("run_id", "seq"),)

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    run_id: Mapped[int] = mapped_column(ForeignKey("heartbeat_runs.id", ondelete="CASCADE"))
    seq: Mapped[int]
    event_type: Mapped[str]
    stream: Mapped[str | None]
    level: Mapped[str | None]
    message: Mapped[str | None]
    payload: Mapped[OptionalJson]
    occurred_at: Mapped[Timestamp]
    created_at: Mapped[CreatedAt]


class AttributionHint(Base):
    """An explicit claim: this session (or agent) serves this issue from `valid_from`
    until `valid_to` (open-ended when null)."""

    __tablename__ = "attribution_hints"
    __table_args__ = (
        UniqueConstraint("company_id", "hint_key"),
        Index("ix_attribution_hints_session_key_valid_from", "session_key", "valid_from"),
    )

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    hint_key: Mapped[str]  # idempotency key for retried writes
    session_key: Mapped[str | None]
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("agent_sessions.id", ondelete="SET NULL")
    )
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    valid_from: Mapped[Timestamp]
    valid_to: Mapped[OptionalTimestamp]
    origin: Mapped[str]  # agent, api, heartbeat_run
    note: Mapped[str | None]
    created_by_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL")
    )
    created_at: Mapped[CreatedAt]


class SessionCorrelation(Base):
    """An upstream session id (an MCP server's process session, a Paperclip run) that is the
    same conversation as one of our agent sessions, and how that was decided."""

    __tablename__ = "session_correlations"
    __table_args__ = (UniqueConstraint("company_id", "upstream_source", "upstream_key"),)

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk(index=False)
    upstream_source: Mapped[str]  # pigeon-mcp, paperclip-run, ...
    upstream_key: Mapped[str]
    session_id: Mapped[int] = mapped_column(
        ForeignKey("agent_sessions.id", ondelete="CASCADE"), index=True
    )
    method: Mapped[str]  # identity, time-overlap+workspace, ...
    overlap_seconds: Mapped[int | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]
