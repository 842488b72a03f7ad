"""The canonical schema: migrations and models agree, and migrations run both ways."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, pool

from schemas.canonical import metadata
from schemas.migrations import HEAD_REVISION
from schemas.migrations.runner import alembic_config, current_revision, head_revision

EXPECTED_TABLES = {
    "companies",
    "agents",
    "api_keys",
    "projects",
    "goals",
    "issues",
    "issue_status_changes",
    "git_commits",
    "issue_commit_links",
    "issue_activity",
    "session_correlations",
    "agent_sessions",
    "token_usage_events",
    "tool_calls",
    "usage_day_deltas",
    "heartbeat_runs",
    "heartbeat_run_events",
    "attribution_hints",
    "price_overrides",
    "cost_events",
    "finance_events",
    "budget_policies",
    "budget_incidents",
    "approvals",
    "performance_interventions",
    "evaluation_rubrics",
    "human_annotations",
    "activity_log",
    "ingestion_runs",
    "ingestion_cursors",
    "ingestion_rejects",
}


def test_head_revision_constant_matches_the_migrations():
    assert head_revision() == HEAD_REVISION


def test_migrated_database_matches_the_models(db_url):
    engine = create_engine(db_url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert tables == EXPECTED_TABLES
    assert diff == []


def test_downgrade_and_upgrade_again(db_url):
    from alembic import command

    config = alembic_config(db_url)
    command.downgrade(config, "base")
    assert current_revision(db_url) is None
    command.upgrade(config, "head")
    assert current_revision(db_url) == HEAD_REVISION


def test_money_is_exact_and_tokens_are_bigint():
    usage = metadata.tables["token_usage_events"]
    assert str(usage.c.reported_cost_usd.type) == "NUMERIC(24, 12)"
    assert str(usage.c.input_tokens.type) == "BIGINT"
    assert usage.c.occurred_at.type.timezone is True


def test_deleting_a_company_removes_its_sessions_and_their_events(conninfo):
    """Usage events carry no foreign key to their company (schema 0004): they go with their
    session, which goes with its company."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        companies = [
            conn.execute(
                "INSERT INTO companies (slug, name) VALUES (%s, %s) RETURNING id", (slug, slug)
            ).fetchone()[0]
            for slug in ("gone", "kept")
        ]
        for company in companies:
            session = conn.execute(
                """INSERT INTO agent_sessions (company_id, source, session_key)
                   VALUES (%s, 'claude_code', 's') RETURNING id""",
                (company,),
            ).fetchone()[0]
            conn.execute(
                """INSERT INTO token_usage_events (company_id, session_id, source, message_id,
                       request_id, occurred_at, provider, model, origin)
                   VALUES (%s, %s, 'claude_code', 'm', 'r', now(), 'anthropic', 'x',
                           'transcript')""",
                (company, session),
            )
        conn.execute("DELETE FROM companies WHERE slug = 'gone'")
        left = conn.execute("SELECT company_id FROM token_usage_events").fetchall()
    assert left == [(companies[1],)]
