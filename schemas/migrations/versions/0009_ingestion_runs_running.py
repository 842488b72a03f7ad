"""ingestion runs: a partial index of the runs still marked running

Every ingest first marks the runs whose database session is gone as interrupted. Without an
index that statement read every run ever recorded: the agent-log sensor starts a run a
minute, 600,000 a year, and it cost each of them 0.1 s.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_ingestion_runs_running",
        "ingestion_runs",
        ["id"],
        postgresql_where=sa.text("status = 'running'"),
    )


def downgrade() -> None:
    op.drop_index("ix_ingestion_runs_running", table_name="ingestion_runs")
