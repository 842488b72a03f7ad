"""Governance and review: approvals, interventions, rubrics, annotations and the audit log."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from schemas.canonical.base import (
    Base,
    BigId,
    CreatedAt,
    Json,
    OptionalJson,
    OptionalTimestamp,
    Timestamp,
    company_fk,
)


class Approval(Base):
    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("company_id", "source", "external_id"),)

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    source: Mapped[str] = mapped_column(server_default="tally")
    external_id: Mapped[str | None]
    kind: Mapped[str]
    status: Mapped[str] = mapped_column(server_default="pending")  # pending, approved, rejected
    subject_type: Mapped[str | None]
    subject_id: Mapped[int | None]
    payload: Mapped[Json]
    requested_by: Mapped[str | None]
    decided_by: Mapped[str | None]
    decision_note: Mapped[str | None]
    decided_at: Mapped[OptionalTimestamp]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class PerformanceIntervention(Base):
    """A change made to improve an agent (prompt, model, budget, pause), to compare
    performance before and after."""

    __tablename__ = "performance_interventions"

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="SET NULL"))
    kind: Mapped[str]
    reason: Mapped[str | None]
    status: Mapped[str] = mapped_column(server_default="active")
    effective_at: Mapped[Timestamp]
    ended_at: Mapped[OptionalTimestamp]
    details: Mapped[Json]
    created_by: Mapped[str | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class EvaluationRubric(Base):
    __tablename__ = "evaluation_rubrics"
    __table_args__ = (UniqueConstraint("company_id", "name", "version"),)

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    name: Mapped[str]
    version: Mapped[int] = mapped_column(nullable=False, server_default="1")
    description: Mapped[str | None]
    criteria: Mapped[Json]
    active: Mapped[bool] = mapped_column(nullable=False, server_default="true")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class HumanAnnotation(Base):
    __tablename__ = "human_annotations"
    __table_args__ = (Index("ix_human_annotations_target", "target_type", "target_id"),)

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    target_type: Mapped[str]  # heartbeat_run, agent_session, token_usage_event, issue
    target_id: Mapped[int]
    rubric_id: Mapped[int | None] = mapped_column(
        ForeignKey("evaluation_rubrics.id", ondelete="SET NULL")
    )
    score: Mapped[Decimal | None] = mapped_column(Numeric(10, 4))
    label: Mapped[str | None]
    comment: Mapped[str | None]
    annotator: Mapped[str | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class ActivityLog(Base):
    """Audit trail: every governance write, and upstream activity read from sources."""

    __tablename__ = "activity_log"
    __table_args__ = (
        UniqueConstraint("company_id", "source", "external_id"),
        Index("ix_activity_log_entity", "entity_type", "entity_id"),
        Index("ix_activity_log_occurred_at", "occurred_at"),
    )

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    source: Mapped[str] = mapped_column(server_default="tally")
    external_id: Mapped[str | None]
    actor_type: Mapped[str]  # api_key, cli, agent, user, system
    actor_id: Mapped[str | None]
    action: Mapped[str]
    entity_type: Mapped[str]
    entity_id: Mapped[str | None]
    before: Mapped[OptionalJson]
    after: Mapped[OptionalJson]
    occurred_at: Mapped[Timestamp]
    created_at: Mapped[CreatedAt]
