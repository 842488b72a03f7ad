"""agent sessions: an index of each session's children

Ingestion sets the root of each batch's session trees by walking down from the batch's
topmost sessions to their children; without this index each step of that walk read every
session, and the statement that replaced it re-joined all sessions of the source twice per
batch (30 ms a batch at 20,000 sessions, growing with the store).

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_agent_sessions_parent_session_id"), "agent_sessions", ["parent_session_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_agent_sessions_parent_session_id"), table_name="agent_sessions")
