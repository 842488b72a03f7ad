"""canonical schema v1

Revision ID: 0001
Revises:
Create Date: 2026-11-22 00:13:01.471743
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "companies",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("slug", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("source", sa.Text(), server_default="tally", nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_companies")),
        sa.UniqueConstraint("slug", name=op.f("uq_companies_slug")),
        sa.UniqueConstraint("source", "external_id", name=op.f("uq_companies_source_external_id")),
    )
    op.create_table(
        "ingestion_runs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="running", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("files_seen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("files_read", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("bytes_read", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("lines_read", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("events_new", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("events_merged", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("tool_calls_seen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("sessions_seen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rejects", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "arguments",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("host", sa.Text(), nullable=True),
        sa.Column("pid", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingestion_runs")),
    )
    op.create_table(
        "activity_log",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), server_default="tally", nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("actor_type", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("entity_type", sa.Text(), nullable=False),
        sa.Column("entity_id", sa.Text(), nullable=True),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_activity_log_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_log")),
        sa.UniqueConstraint(
            "company_id",
            "source",
            "external_id",
            name=op.f("uq_activity_log_company_id_source_external_id"),
        ),
    )
    op.create_index(
        op.f("ix_activity_log_company_id"), "activity_log", ["company_id"], unique=False
    )
    op.create_index(
        "ix_activity_log_entity", "activity_log", ["entity_type", "entity_id"], unique=False
    )
    op.create_index("ix_activity_log_occurred_at", "activity_log", ["occurred_at"], unique=False)
    op.create_table(
        "agents",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("adapter_type", sa.Text(), nullable=True),
        sa.Column("reports_to_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_agents_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reports_to_id"],
            ["agents.id"],
            name=op.f("fk_agents_reports_to_id_agents"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint(
            "company_id",
            "source",
            "external_id",
            name=op.f("uq_agents_company_id_source_external_id"),
        ),
    )
    op.create_index(op.f("ix_agents_company_id"), "agents", ["company_id"], unique=False)
    op.create_table(
        "approvals",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), server_default="tally", nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("subject_type", sa.Text(), nullable=True),
        sa.Column("subject_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "payload", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("requested_by", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_approvals_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
        sa.UniqueConstraint(
            "company_id",
            "source",
            "external_id",
            name=op.f("uq_approvals_company_id_source_external_id"),
        ),
    )
    op.create_index(op.f("ix_approvals_company_id"), "approvals", ["company_id"], unique=False)
    op.create_table(
        "budget_policies",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), server_default="tally", nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("scope_type", sa.Text(), nullable=False),
        sa.Column("scope_id", sa.BigInteger(), nullable=True),
        sa.Column("window_kind", sa.Text(), nullable=False),
        sa.Column("window_days", sa.BigInteger(), nullable=True),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=24, scale=12), nullable=False),
        sa.Column("warn_percent", sa.BigInteger(), server_default="80", nullable=False),
        sa.Column("hard_stop", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "metric IN ('usd', 'tokens', 'runs')", name=op.f("ck_budget_policies_metric")
        ),
        sa.CheckConstraint(
            "scope_type IN ('company', 'agent', 'project', 'issue')",
            name=op.f("ck_budget_policies_scope_type"),
        ),
        sa.CheckConstraint(
            "window_kind <> 'rolling_days' OR window_days > 0",
            name=op.f("ck_budget_policies_rolling_window_days"),
        ),
        sa.CheckConstraint(
            "window_kind IN ('calendar_month', 'day', 'rolling_days', 'lifetime')",
            name=op.f("ck_budget_policies_window_kind"),
        ),
        sa.CheckConstraint(
            "warn_percent > 0 AND warn_percent <= 100", name=op.f("ck_budget_policies_warn_percent")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_budget_policies_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_policies")),
        sa.UniqueConstraint(
            "company_id",
            "source",
            "external_id",
            name=op.f("uq_budget_policies_company_id_source_external_id"),
        ),
    )
    op.create_index(
        op.f("ix_budget_policies_company_id"), "budget_policies", ["company_id"], unique=False
    )
    op.create_table(
        "evaluation_rubrics",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="1", nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "criteria", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_evaluation_rubrics_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_rubrics")),
        sa.UniqueConstraint(
            "company_id",
            "name",
            "version",
            name=op.f("uq_evaluation_rubrics_company_id_name_version"),
        ),
    )
    op.create_index(
        op.f("ix_evaluation_rubrics_company_id"), "evaluation_rubrics", ["company_id"], unique=False
    )
    op.create_table(
        "finance_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("direction", sa.Text(), nullable=False),
        sa.Column("amount_usd", sa.Numeric(precision=24, scale=12), nullable=False),
        sa.Column("biller", sa.Text(), nullable=True),
        sa.Column("estimated", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_finance_events_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finance_events")),
        sa.UniqueConstraint(
            "company_id",
            "source",
            "external_id",
            name=op.f("uq_finance_events_company_id_source_external_id"),
        ),
    )
    op.create_index(
        op.f("ix_finance_events_company_id"), "finance_events", ["company_id"], unique=False
    )
    op.create_table(
        "ingestion_cursors",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("file_identity", sa.Text(), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("file_mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("byte_offset", sa.BigInteger(), nullable=False),
        sa.Column("head_fingerprint", sa.Text(), nullable=False),
        sa.Column(
            "state", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("last_run_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["last_run_id"],
            ["ingestion_runs.id"],
            name=op.f("fk_ingestion_cursors_last_run_id_ingestion_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingestion_cursors")),
        sa.UniqueConstraint("source", "path", name=op.f("uq_ingestion_cursors_source_path")),
    )
    op.create_table(
        "ingestion_rejects",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("position", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["ingestion_runs.id"],
            name=op.f("fk_ingestion_rejects_run_id_ingestion_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingestion_rejects")),
        sa.UniqueConstraint(
            "source",
            "location",
            "position",
            "fingerprint",
            name=op.f("uq_ingestion_rejects_source_location_position_fingerprint"),
        ),
    )
    op.create_index(
        "ix_ingestion_rejects_created_at", "ingestion_rejects", ["created_at"], unique=False
    )
    op.create_table(
        "price_overrides",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=True),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("model_pattern", sa.Text(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("effective_to", sa.Date(), nullable=True),
        sa.Column("input_per_mtok", sa.Numeric(precision=24, scale=12), nullable=True),
        sa.Column("output_per_mtok", sa.Numeric(precision=24, scale=12), nullable=True),
        sa.Column("cache_read_per_mtok", sa.Numeric(precision=24, scale=12), nullable=True),
        sa.Column("cache_write_5m_per_mtok", sa.Numeric(precision=24, scale=12), nullable=True),
        sa.Column("cache_write_1h_per_mtok", sa.Numeric(precision=24, scale=12), nullable=True),
        sa.Column("web_search_per_thousand", sa.Numeric(precision=24, scale=12), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "effective_to IS NULL OR effective_to > effective_from",
            name=op.f("ck_price_overrides_effective_range"),
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_price_overrides_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_overrides")),
    )
    op.create_index(
        "ix_price_overrides_provider_effective_from",
        "price_overrides",
        ["provider", "effective_from"],
        unique=False,
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=True),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role <> 'agent' OR agent_id IS NOT NULL", name=op.f("ck_api_keys_agent_key_has_agent")
        ),
        sa.CheckConstraint("role IN ('agent', 'board', 'service')", name=op.f("ck_api_keys_role")),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_api_keys_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_api_keys_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_index(op.f("ix_api_keys_company_id"), "api_keys", ["company_id"], unique=False)
    op.create_index(
        "ix_api_keys_company_id_revoked_at", "api_keys", ["company_id", "revoked_at"], unique=False
    )
    op.create_table(
        "budget_incidents",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("policy_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), server_default="tally", nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("observed_amount", sa.Numeric(precision=24, scale=12), nullable=False),
        sa.Column("threshold_amount", sa.Numeric(precision=24, scale=12), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_budget_incidents_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["budget_policies.id"],
            name=op.f("fk_budget_incidents_policy_id_budget_policies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_incidents")),
        sa.UniqueConstraint(
            "company_id",
            "source",
            "external_id",
            name=op.f("uq_budget_incidents_company_id_source_external_id"),
        ),
    )
    op.create_index(
        op.f("ix_budget_incidents_company_id"), "budget_incidents", ["company_id"], unique=False
    )
    op.create_index(
        op.f("ix_budget_incidents_policy_id"), "budget_incidents", ["policy_id"], unique=False
    )
    op.create_table(
        "goals",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("owner_agent_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_goals_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_agent_id"],
            ["agents.id"],
            name=op.f("fk_goals_owner_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["goals.id"], name=op.f("fk_goals_parent_id_goals"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_goals")),
        sa.UniqueConstraint(
            "company_id",
            "source",
            "external_id",
            name=op.f("uq_goals_company_id_source_external_id"),
        ),
    )
    op.create_index(op.f("ix_goals_company_id"), "goals", ["company_id"], unique=False)
    op.create_table(
        "human_annotations",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("target_type", sa.Text(), nullable=False),
        sa.Column("target_id", sa.BigInteger(), nullable=False),
        sa.Column("rubric_id", sa.BigInteger(), nullable=True),
        sa.Column("score", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("annotator", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_human_annotations_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rubric_id"],
            ["evaluation_rubrics.id"],
            name=op.f("fk_human_annotations_rubric_id_evaluation_rubrics"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_human_annotations")),
    )
    op.create_index(
        op.f("ix_human_annotations_company_id"), "human_annotations", ["company_id"], unique=False
    )
    op.create_index(
        "ix_human_annotations_target",
        "human_annotations",
        ["target_type", "target_id"],
        unique=False,
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("goal_id", sa.BigInteger(), nullable=True),
        sa.Column("workspace_path", sa.Text(), nullable=True),
        sa.Column("repo_url", sa.Text(), nullable=True),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_projects_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["goal_id"], ["goals.id"], name=op.f("fk_projects_goal_id_goals"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint(
            "company_id",
            "source",
            "external_id",
            name=op.f("uq_projects_company_id_source_external_id"),
        ),
    )
    op.create_index(op.f("ix_projects_company_id"), "projects", ["company_id"], unique=False)
    op.create_table(
        "agent_sessions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("session_key", sa.Text(), nullable=False),
        sa.Column("parent_session_id", sa.BigInteger(), nullable=True),
        sa.Column("root_session_id", sa.BigInteger(), nullable=True),
        sa.Column("is_subagent", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("subagent_key", sa.Text(), nullable=True),
        sa.Column("agent_id", sa.BigInteger(), nullable=True),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("project_path", sa.Text(), nullable=True),
        sa.Column("git_branch", sa.Text(), nullable=True),
        sa.Column("client_version", sa.Text(), nullable=True),
        sa.Column("first_activity_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("described_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_path", sa.Text(), nullable=True),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_sessions_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_agent_sessions_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_session_id"],
            ["agent_sessions.id"],
            name=op.f("fk_agent_sessions_parent_session_id_agent_sessions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_agent_sessions_project_id_projects"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["root_session_id"],
            ["agent_sessions.id"],
            name=op.f("fk_agent_sessions_root_session_id_agent_sessions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_sessions")),
        sa.UniqueConstraint(
            "company_id",
            "source",
            "session_key",
            name=op.f("uq_agent_sessions_company_id_source_session_key"),
        ),
    )
    op.create_index(
        "ix_agent_sessions_first_activity_at", "agent_sessions", ["first_activity_at"], unique=False
    )
    op.create_index(
        "ix_agent_sessions_root_session_id", "agent_sessions", ["root_session_id"], unique=False
    )
    op.create_table(
        "issues",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("goal_id", sa.BigInteger(), nullable=True),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("number", sa.BigInteger(), nullable=True),
        sa.Column("identifier", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("priority", sa.Text(), nullable=True),
        sa.Column("assignee_agent_id", sa.BigInteger(), nullable=True),
        sa.Column("billing_code", sa.Text(), nullable=True),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["assignee_agent_id"],
            ["agents.id"],
            name=op.f("fk_issues_assignee_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_issues_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["goal_id"], ["goals.id"], name=op.f("fk_issues_goal_id_goals"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["issues.id"],
            name=op.f("fk_issues_parent_id_issues"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_issues_project_id_projects"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issues")),
        sa.UniqueConstraint(
            "company_id",
            "source",
            "external_id",
            name=op.f("uq_issues_company_id_source_external_id"),
        ),
        sa.UniqueConstraint("project_id", "number", name=op.f("uq_issues_project_id_number")),
    )
    op.create_index(op.f("ix_issues_company_id"), "issues", ["company_id"], unique=False)
    op.create_index("ix_issues_company_id_status", "issues", ["company_id", "status"], unique=False)
    op.create_index(op.f("ix_issues_project_id"), "issues", ["project_id"], unique=False)
    op.create_table(
        "attribution_hints",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("hint_key", sa.Text(), nullable=False),
        sa.Column("session_key", sa.Text(), nullable=True),
        sa.Column("session_id", sa.BigInteger(), nullable=True),
        sa.Column("agent_id", sa.BigInteger(), nullable=True),
        sa.Column("issue_id", sa.BigInteger(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by_key_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_attribution_hints_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_attribution_hints_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_key_id"],
            ["api_keys.id"],
            name=op.f("fk_attribution_hints_created_by_key_id_api_keys"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name=op.f("fk_attribution_hints_issue_id_issues"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["agent_sessions.id"],
            name=op.f("fk_attribution_hints_session_id_agent_sessions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attribution_hints")),
        sa.UniqueConstraint(
            "company_id", "hint_key", name=op.f("uq_attribution_hints_company_id_hint_key")
        ),
    )
    op.create_index(
        op.f("ix_attribution_hints_company_id"), "attribution_hints", ["company_id"], unique=False
    )
    op.create_index(
        "ix_attribution_hints_session_key_valid_from",
        "attribution_hints",
        ["session_key", "valid_from"],
        unique=False,
    )
    op.create_table(
        "git_commits",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("repo", sa.Text(), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.Column("author_name", sa.Text(), nullable=True),
        sa.Column("author_email", sa.Text(), nullable=True),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("files", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("session_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_git_commits_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_git_commits_project_id_projects"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["agent_sessions.id"],
            name=op.f("fk_git_commits_session_id_agent_sessions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_git_commits")),
        sa.UniqueConstraint(
            "company_id", "repo", "hash", name=op.f("uq_git_commits_company_id_repo_hash")
        ),
    )
    op.create_index("ix_git_commits_committed_at", "git_commits", ["committed_at"], unique=False)
    op.create_index(op.f("ix_git_commits_company_id"), "git_commits", ["company_id"], unique=False)
    op.create_table(
        "heartbeat_runs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=True),
        sa.Column("issue_id", sa.BigInteger(), nullable=True),
        sa.Column("session_id", sa.BigInteger(), nullable=True),
        sa.Column("adapter_session_key", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("invocation_source", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("exit_code", sa.BigInteger(), nullable=True),
        sa.Column("usage", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("context", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_heartbeat_runs_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_heartbeat_runs_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name=op.f("fk_heartbeat_runs_issue_id_issues"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["agent_sessions.id"],
            name=op.f("fk_heartbeat_runs_session_id_agent_sessions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heartbeat_runs")),
        sa.UniqueConstraint(
            "company_id",
            "source",
            "external_id",
            name=op.f("uq_heartbeat_runs_company_id_source_external_id"),
        ),
    )
    op.create_index(
        "ix_heartbeat_runs_agent_id_started_at",
        "heartbeat_runs",
        ["agent_id", "started_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_heartbeat_runs_company_id"), "heartbeat_runs", ["company_id"], unique=False
    )
    op.create_table(
        "issue_status_changes",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("issue_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("from_status", sa.Text(), nullable=True),
        sa.Column("to_status", sa.Text(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_type", sa.Text(), nullable=True),
        sa.Column("actor_agent_id", sa.BigInteger(), nullable=True),
        sa.Column("session_key", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["actor_agent_id"],
            ["agents.id"],
            name=op.f("fk_issue_status_changes_actor_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_issue_status_changes_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name=op.f("fk_issue_status_changes_issue_id_issues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issue_status_changes")),
        sa.UniqueConstraint(
            "company_id",
            "source",
            "external_id",
            name=op.f("uq_issue_status_changes_company_id_source_external_id"),
        ),
    )
    op.create_index(
        op.f("ix_issue_status_changes_company_id"),
        "issue_status_changes",
        ["company_id"],
        unique=False,
    )
    op.create_index(
        "ix_issue_status_changes_issue_id_changed_at",
        "issue_status_changes",
        ["issue_id", "changed_at"],
        unique=False,
    )
    op.create_table(
        "performance_interventions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=True),
        sa.Column("issue_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "details", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_performance_interventions_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_performance_interventions_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name=op.f("fk_performance_interventions_issue_id_issues"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_performance_interventions")),
    )
    op.create_index(
        op.f("ix_performance_interventions_company_id"),
        "performance_interventions",
        ["company_id"],
        unique=False,
    )
    op.create_table(
        "tool_calls",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("call_key", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("tool_name", sa.Text(), nullable=True),
        sa.Column("mcp_server", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("result_chars", sa.BigInteger(), nullable=True),
        sa.Column("result_tokens_estimate", sa.BigInteger(), nullable=True),
        sa.Column("file_paths", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column(
            "commit_hashes", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("source_path", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_tool_calls_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["agent_sessions.id"],
            name=op.f("fk_tool_calls_session_id_agent_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_calls")),
        sa.UniqueConstraint(
            "company_id",
            "source",
            "call_key",
            name=op.f("uq_tool_calls_company_id_source_call_key"),
        ),
    )
    op.create_index(
        "ix_tool_calls_session_id_started_at",
        "tool_calls",
        ["session_id", "started_at"],
        unique=False,
    )
    op.create_index("ix_tool_calls_tool_name", "tool_calls", ["tool_name"], unique=False)
    op.create_table(
        "cost_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=True),
        sa.Column("issue_id", sa.BigInteger(), nullable=True),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("heartbeat_run_id", sa.BigInteger(), nullable=True),
        sa.Column("provider", sa.Text(), nullable=True),
        sa.Column("biller", sa.Text(), nullable=True),
        sa.Column("billing_type", sa.Text(), nullable=True),
        sa.Column("billing_code", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cached_input_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cost_usd", sa.Numeric(precision=24, scale=12), nullable=False),
        sa.Column("cost_status", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_cost_events_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_cost_events_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["heartbeat_run_id"],
            ["heartbeat_runs.id"],
            name=op.f("fk_cost_events_heartbeat_run_id_heartbeat_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name=op.f("fk_cost_events_issue_id_issues"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_cost_events_project_id_projects"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_events")),
        sa.UniqueConstraint(
            "company_id",
            "source",
            "external_id",
            name=op.f("uq_cost_events_company_id_source_external_id"),
        ),
    )
    op.create_index(op.f("ix_cost_events_company_id"), "cost_events", ["company_id"], unique=False)
    op.create_index("ix_cost_events_occurred_at", "cost_events", ["occurred_at"], unique=False)
    op.create_table(
        "heartbeat_run_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("stream", sa.Text(), nullable=True),
        sa.Column("level", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_heartbeat_run_events_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["heartbeat_runs.id"],
            name=op.f("fk_heartbeat_run_events_run_id_heartbeat_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heartbeat_run_events")),
        sa.UniqueConstraint("run_id", "seq", name=op.f("uq_heartbeat_run_events_run_id_seq")),
    )
    op.create_index(
        op.f("ix_heartbeat_run_events_company_id"),
        "heartbeat_run_events",
        ["company_id"],
        unique=False,
    )
    op.create_table(
        "issue_commit_links",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("issue_id", sa.BigInteger(), nullable=False),
        sa.Column("commit_id", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("link_source", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["commit_id"],
            ["git_commits.id"],
            name=op.f("fk_issue_commit_links_commit_id_git_commits"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_issue_commit_links_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name=op.f("fk_issue_commit_links_issue_id_issues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issue_commit_links")),
        sa.UniqueConstraint(
            "issue_id", "commit_id", name=op.f("uq_issue_commit_links_issue_id_commit_id")
        ),
    )
    op.create_index(
        op.f("ix_issue_commit_links_commit_id"), "issue_commit_links", ["commit_id"], unique=False
    )
    op.create_index(
        op.f("ix_issue_commit_links_company_id"), "issue_commit_links", ["company_id"], unique=False
    )
    op.create_table(
        "token_usage_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cache_read_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cache_write_5m_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cache_write_1h_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("web_search_requests", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("service_tier", sa.Text(), nullable=True),
        sa.Column("speed", sa.Text(), nullable=True),
        sa.Column("reported_cost_usd", sa.Numeric(precision=24, scale=12), nullable=True),
        sa.Column("is_sidechain", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("heartbeat_run_id", sa.BigInteger(), nullable=True),
        sa.Column("source_path", sa.Text(), nullable=True),
        sa.Column("source_offset", sa.BigInteger(), nullable=True),
        sa.Column("ingestion_run_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "input_tokens >= 0 AND output_tokens >= 0 AND reasoning_tokens >= 0 AND cache_read_tokens >= 0 AND cache_write_5m_tokens >= 0 AND cache_write_1h_tokens >= 0 AND web_search_requests >= 0",
            name=op.f("ck_token_usage_events_non_negative_tokens"),
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_token_usage_events_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["heartbeat_run_id"],
            ["heartbeat_runs.id"],
            name=op.f("fk_token_usage_events_heartbeat_run_id_heartbeat_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["ingestion_run_id"],
            ["ingestion_runs.id"],
            name=op.f("fk_token_usage_events_ingestion_run_id_ingestion_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["agent_sessions.id"],
            name=op.f("fk_token_usage_events_session_id_agent_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_usage_events")),
        sa.UniqueConstraint(
            "company_id",
            "source",
            "message_id",
            "request_id",
            name=op.f("uq_token_usage_events_company_id_source_message_id_request_id"),
        ),
    )
    op.create_index(
        "ix_token_usage_events_occurred_at", "token_usage_events", ["occurred_at"], unique=False
    )
    op.create_index(
        "ix_token_usage_events_session_id_occurred_at",
        "token_usage_events",
        ["session_id", "occurred_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_token_usage_events_session_id_occurred_at", table_name="token_usage_events")
    op.drop_index("ix_token_usage_events_occurred_at", table_name="token_usage_events")
    op.drop_table("token_usage_events")
    op.drop_index(op.f("ix_issue_commit_links_company_id"), table_name="issue_commit_links")
    op.drop_index(op.f("ix_issue_commit_links_commit_id"), table_name="issue_commit_links")
    op.drop_table("issue_commit_links")
    op.drop_index(op.f("ix_heartbeat_run_events_company_id"), table_name="heartbeat_run_events")
    op.drop_table("heartbeat_run_events")
    op.drop_index("ix_cost_events_occurred_at", table_name="cost_events")
    op.drop_index(op.f("ix_cost_events_company_id"), table_name="cost_events")
    op.drop_table("cost_events")
    op.drop_index("ix_tool_calls_tool_name", table_name="tool_calls")
    op.drop_index("ix_tool_calls_session_id_started_at", table_name="tool_calls")
    op.drop_table("tool_calls")
    op.drop_index(
        op.f("ix_performance_interventions_company_id"), table_name="performance_interventions"
    )
    op.drop_table("performance_interventions")
    op.drop_index("ix_issue_status_changes_issue_id_changed_at", table_name="issue_status_changes")
    op.drop_index(op.f("ix_issue_status_changes_company_id"), table_name="issue_status_changes")
    op.drop_table("issue_status_changes")
    op.drop_index(op.f("ix_heartbeat_runs_company_id"), table_name="heartbeat_runs")
    op.drop_index("ix_heartbeat_runs_agent_id_started_at", table_name="heartbeat_runs")
    op.drop_table("heartbeat_runs")
    op.drop_index(op.f("ix_git_commits_company_id"), table_name="git_commits")
    op.drop_index("ix_git_commits_committed_at", table_name="git_commits")
    op.drop_table("git_commits")
    op.drop_index("ix_attribution_hints_session_key_valid_from", table_name="attribution_hints")
    op.drop_index(op.f("ix_attribution_hints_company_id"), table_name="attribution_hints")
    op.drop_table("attribution_hints")
    op.drop_index(op.f("ix_issues_project_id"), table_name="issues")
    op.drop_index("ix_issues_company_id_status", table_name="issues")
    op.drop_index(op.f("ix_issues_company_id"), table_name="issues")
    op.drop_table("issues")
    op.drop_index("ix_agent_sessions_root_session_id", table_name="agent_sessions")
    op.drop_index("ix_agent_sessions_first_activity_at", table_name="agent_sessions")
    op.drop_table("agent_sessions")
    op.drop_index(op.f("ix_projects_company_id"), table_name="projects")
    op.drop_table("projects")
    op.drop_index("ix_human_annotations_target", table_name="human_annotations")
    op.drop_index(op.f("ix_human_annotations_company_id"), table_name="human_annotations")
    op.drop_table("human_annotations")
    op.drop_index(op.f("ix_goals_company_id"), table_name="goals")
    op.drop_table("goals")
    op.drop_index(op.f("ix_budget_incidents_policy_id"), table_name="budget_incidents")
    op.drop_index(op.f("ix_budget_incidents_company_id"), table_name="budget_incidents")
    op.drop_table("budget_incidents")
    op.drop_index("ix_api_keys_company_id_revoked_at", table_name="api_keys")
    op.drop_index(op.f("ix_api_keys_company_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index("ix_price_overrides_provider_effective_from", table_name="price_overrides")
    op.drop_table("price_overrides")
    op.drop_index("ix_ingestion_rejects_created_at", table_name="ingestion_rejects")
    op.drop_table("ingestion_rejects")
    op.drop_table("ingestion_cursors")
    op.drop_index(op.f("ix_finance_events_company_id"), table_name="finance_events")
    op.drop_table("finance_events")
    op.drop_index(op.f("ix_evaluation_rubrics_company_id"), table_name="evaluation_rubrics")
    op.drop_table("evaluation_rubrics")
    op.drop_index(op.f("ix_budget_policies_company_id"), table_name="budget_policies")
    op.drop_table("budget_policies")
    op.drop_index(op.f("ix_approvals_company_id"), table_name="approvals")
    op.drop_table("approvals")
    op.drop_index(op.f("ix_agents_company_id"), table_name="agents")
    op.drop_table("agents")
    op.drop_index("ix_activity_log_occurred_at", table_name="activity_log")
    op.drop_index("ix_activity_log_entity", table_name="activity_log")
    op.drop_index(op.f("ix_activity_log_company_id"), table_name="activity_log")
    op.drop_table("activity_log")
    op.drop_table("ingestion_runs")
    op.drop_table("companies")
