"""Identity and org: companies, their agents and the API keys that act for them."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from schemas.canonical.base import Base, BigId, CreatedAt, Json, OptionalTimestamp, company_fk


class Company(Base):
    """A tenant: one company running agents. `slug` is how the CLI and keys name it."""

    __tablename__ = "companies"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: Mapped[BigId]
    slug: Mapped[str] = mapped_column(unique=True)
    name: Mapped[str]
    status: Mapped[str] = mapped_column(server_default="active")
    source: Mapped[str] = mapped_column(server_default="tally")
    external_id: Mapped[str | None]
    attributes: Mapped[Json]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class Agent(Base):
    """An AI employee (Paperclip agent, a Pigeon agent name, or a local coding agent)."""

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("company_id", "source", "external_id"),)

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    source: Mapped[str]
    external_id: Mapped[str]
    name: Mapped[str]
    role: Mapped[str | None]
    title: Mapped[str | None]
    status: Mapped[str | None]
    adapter_type: Mapped[str | None]
    reports_to_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    attributes: Mapped[Json]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class ApiKey(Base):
    """A bearer key, stored hashed; `prefix` is the short public part used for lookup."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("role IN ('agent', 'board', 'service')", name="role"),
        CheckConstraint("role <> 'agent' OR agent_id IS NOT NULL", name="agent_key_has_agent"),
        Index("ix_api_keys_company_id_revoked_at", "company_id", "revoked_at"),
    )

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    role: Mapped[str]
    name: Mapped[str | None]
    prefix: Mapped[str] = mapped_column(unique=True)
    key_hash: Mapped[str]
    created_at: Mapped[CreatedAt]
    last_used_at: Mapped[OptionalTimestamp]
    revoked_at: Mapped[OptionalTimestamp]
