"""The work graph: projects, goals, issues, their status history, and the commits that
reference them."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import Text

from schemas.canonical.base import (
    Base,
    BigId,
    CreatedAt,
    Json,
    OptionalTimestamp,
    Timestamp,
    company_fk,
)


class Goal(Base):
    __tablename__ = "goals"
    __table_args__ = (UniqueConstraint("company_id", "source", "external_id"),)

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    source: Mapped[str]
    external_id: Mapped[str]
    title: Mapped[str]
    level: Mapped[str | None]
    status: Mapped[str | None]
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("goals.id", ondelete="SET NULL"))
    owner_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class Project(Base):
    """A project; `workspace_path` and `repo_url` correlate agent sessions to it."""

    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("company_id", "source", "external_id"),)

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    source: Mapped[str]
    external_id: Mapped[str]
    name: Mapped[str]
    key: Mapped[str | None]  # issue prefix, e.g. "PAP" in PAP-12
    status: Mapped[str | None]
    goal_id: Mapped[int | None] = mapped_column(ForeignKey("goals.id", ondelete="SET NULL"))
    workspace_path: Mapped[str | None]
    repo_url: Mapped[str | None]
    attributes: Mapped[Json]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]
    archived_at: Mapped[OptionalTimestamp]


class Issue(Base):
    """A unit of work (Paperclip issue, Pigeon card). `number` is project-scoped."""

    __tablename__ = "issues"
    __table_args__ = (
        UniqueConstraint("company_id", "source", "external_id"),
        UniqueConstraint("project_id", "number"),
        Index("ix_issues_company_id_status", "company_id", "status"),
    )

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    source: Mapped[str]
    external_id: Mapped[str]
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), index=True
    )
    goal_id: Mapped[int | None] = mapped_column(ForeignKey("goals.id", ondelete="SET NULL"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="SET NULL"))
    number: Mapped[int | None]
    identifier: Mapped[str | None]
    title: Mapped[str]
    status: Mapped[str]
    priority: Mapped[str | None]
    assignee_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL")
    )
    billing_code: Mapped[str | None]
    attributes: Mapped[Json]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]
    started_at: Mapped[OptionalTimestamp]
    completed_at: Mapped[OptionalTimestamp]
    cancelled_at: Mapped[OptionalTimestamp]


class IssueStatusChange(Base):
    """Status history, so board state can be taken as of any instant."""

    __tablename__ = "issue_status_changes"
    __table_args__ = (
        UniqueConstraint("company_id", "source", "external_id"),
        Index("ix_issue_status_changes_issue_id_changed_at", "issue_id", "changed_at"),
    )

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    source: Mapped[str]
    external_id: Mapped[str]
    from_status: Mapped[str | None]
    to_status: Mapped[str]
    changed_at: Mapped[Timestamp]
    actor_type: Mapped[str | None]
    actor_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    session_key: Mapped[str | None]  # upstream session (e.g. Pigeon's MCP session id)
    created_at: Mapped[CreatedAt]


class IssueActivity(Base):
    """Something done to an issue (created, updated, moved, commented, linked), by whom and
    from which session: a session that acts on an issue is working on it (attribution's
    `session-recent-touch`)."""

    __tablename__ = "issue_activity"
    __table_args__ = (
        UniqueConstraint("company_id", "source", "external_id"),
        Index("ix_issue_activity_session_key_occurred_at", "session_key", "occurred_at"),
        Index("ix_issue_activity_issue_id_occurred_at", "issue_id", "occurred_at"),
    )

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk(index=False)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    source: Mapped[str]
    external_id: Mapped[str]
    action: Mapped[str]
    details: Mapped[str | None]
    actor_type: Mapped[str | None]
    actor_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    session_key: Mapped[str | None]  # upstream session (Pigeon MCP session, Paperclip run)
    occurred_at: Mapped[Timestamp]
    created_at: Mapped[CreatedAt]


class GitCommit(Base):
    __tablename__ = "git_commits"
    __table_args__ = (
        UniqueConstraint("company_id", "repo", "hash"),
        Index("ix_git_commits_committed_at", "committed_at"),
    )

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    repo: Mapped[str]
    hash: Mapped[str]
    author_name: Mapped[str | None]
    author_email: Mapped[str | None]
    committed_at: Mapped[Timestamp]
    message: Mapped[str]
    files: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("agent_sessions.id", ondelete="SET NULL")
    )
    session_link: Mapped[str | None]  # how session_id was found: tool-call-output, ...
    created_at: Mapped[CreatedAt]


class IssueCommitLink(Base):
    __tablename__ = "issue_commit_links"
    __table_args__ = (UniqueConstraint("issue_id", "commit_id"),)

    id: Mapped[BigId]
    company_id: Mapped[int] = company_fk()
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    commit_id: Mapped[int] = mapped_column(
        ForeignKey("git_commits.id", ondelete="CASCADE"), index=True
    )
    reference: Mapped[str]  # the text that matched, e.g. "#12" or "PAP-12"
    link_source: Mapped[str]  # git-message, pigeon-gitlink, ...
    created_at: Mapped[CreatedAt]


__all__ = [
    "GitCommit",
    "Goal",
    "Issue",
    "IssueActivity",
    "IssueCommitLink",
    "IssueStatusChange",
    "Project",
]
