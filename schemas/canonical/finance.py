"""Finance: price overrides, upstream cost and finance events, budgets and incidents."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from schemas.canonical.base import (
    USD,
    Base,
    BigId,
    CreatedAt,
    Json,
    Money,
    OptionalMoney,
    OptionalTimestamp,
    Timestamp,
    Tokens,
    company_fk,
)


class PriceOverride(Base):
    """A price that wins over the pricing library for matching models from `effective_from`
    (inclusive) to `effective_to` (exclusive). Prices are USD per million tokens."""

    __tablename__ = "price_overrides"
    __table_args__ = (
        CheckConstraint(
            "effective_to IS NULL OR effective_to > effective_from", name="effective_range"
        ),
        Index("ix_price_overrides_provider_effective_from", "provider", "effective_from"),
    )

    id: Mapped[BigId]
    company_id: Mapped[int | None] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE")
    )  # null: applies to every company
    provider: Mapped[str]
    model_pattern: Mapped[str]  # a regular expression matched against the whole model name
    effective_from: Mapped[date] = mapped_column(Date, nullable=False)
    effective_to: Mapped[date | None] = mapped_column(Date)
    input_per_mtok: Mapped[OptionalMoney]
    output_per_mtok: Mapped[OptionalMoney]
    cache_read_per_mtok: Mapped[OptionalMoney]
    cache_write_5m_per_mtok: Mapped[OptionalMoney]
    cache_write_1h_per_mtok: Mapped[OptionalMoney]
    web_search_per_thousand: Mapped[OptionalMoney]
    note: Mapped[str | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class CostEvent(Base):
    """A billed cost as the upstream recorded it (Paperclip: one row per finished run)."""

    __tablename__ = "cost_events"
    __table_args__ = (
        UniqueConstraint("company_id", "source", "external_id"),
        Index("ix_cost_events_occurred_at", "occurred_at"),
    )

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    source: Mapped[str]
    external_id: Mapped[str]
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="SET NULL"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    heartbeat_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("heartbeat_runs.id", ondelete="SET NULL")
    )
    provider: Mapped[str | None]
    biller: Mapped[str | None]
    billing_type: Mapped[str | None]
    billing_code: Mapped[str | None]
    model: Mapped[str | None]
    input_tokens: Mapped[Tokens]
    cached_input_tokens: Mapped[Tokens]
    output_tokens: Mapped[Tokens]
    cost_usd: Mapped[Money]
    cost_status: Mapped[str | None]
    occurred_at: Mapped[Timestamp]
    created_at: Mapped[CreatedAt]


class FinanceEvent(Base):
    """A debit or credit outside token usage (invoices, credits, top-ups)."""

    __tablename__ = "finance_events"
    __table_args__ = (UniqueConstraint("company_id", "source", "external_id"),)

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    source: Mapped[str]
    external_id: Mapped[str]
    kind: Mapped[str]
    direction: Mapped[str]  # debit, credit
    amount_usd: Mapped[Money]
    biller: Mapped[str | None]
    estimated: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    description: Mapped[str | None]
    occurred_at: Mapped[Timestamp]
    attributes: Mapped[Json]
    created_at: Mapped[CreatedAt]


class BudgetPolicy(Base):
    __tablename__ = "budget_policies"
    __table_args__ = (
        CheckConstraint(
            "scope_type IN ('company', 'agent', 'project', 'issue')", name="scope_type"
        ),
        CheckConstraint(
            "window_kind IN ('calendar_month', 'day', 'rolling_days', 'lifetime')",
            name="window_kind",
        ),
        CheckConstraint("metric IN ('usd', 'tokens', 'runs')", name="metric"),
        CheckConstraint(
            "window_kind <> 'rolling_days' OR window_days > 0", name="rolling_window_days"
        ),
        CheckConstraint("warn_percent > 0 AND warn_percent <= 100", name="warn_percent"),
        UniqueConstraint("company_id", "source", "external_id"),
    )

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    source: Mapped[str] = mapped_column(server_default="tally")
    external_id: Mapped[str | None]
    name: Mapped[str | None]
    scope_type: Mapped[str]
    scope_id: Mapped[int | None]  # agents.id / projects.id / issues.id; null for company
    window_kind: Mapped[str]
    window_days: Mapped[int | None]
    metric: Mapped[str]
    amount: Mapped[Decimal] = mapped_column(USD, nullable=False)
    warn_percent: Mapped[int] = mapped_column(nullable=False, server_default="80")
    hard_stop: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class BudgetIncident(Base):
    __tablename__ = "budget_incidents"
    __table_args__ = (UniqueConstraint("company_id", "source", "external_id"),)

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    policy_id: Mapped[int] = mapped_column(
        ForeignKey("budget_policies.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(server_default="tally")
    external_id: Mapped[str | None]
    kind: Mapped[str]  # soft, hard
    status: Mapped[str]  # open, resolved, dismissed
    observed_amount: Mapped[Money]
    threshold_amount: Mapped[Money]
    window_start: Mapped[OptionalTimestamp]
    window_end: Mapped[OptionalTimestamp]
    opened_at: Mapped[Timestamp]
    resolved_at: Mapped[OptionalTimestamp]
    created_at: Mapped[CreatedAt]


__all__ = [
    "BudgetIncident",
    "BudgetPolicy",
    "CostEvent",
    "FinanceEvent",
    "PriceOverride",
]
