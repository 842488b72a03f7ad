"""ingestion cursors: a fingerprint of the bytes just before the offset

A file rewritten in place (same inode: a script that filters a transcript through
`open(path, "w")`, say) with its first 4 KB unchanged and its size past the stored offset
passed the head check; the next run then started mid-line, rejected the fragment and never
read what had changed before the offset. The tail fingerprint (the last bytes read) catches
that: the file is read again from the top, which natural keys make safe. NULL for cursors
written before: for them, the byte before the offset must still end a line.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("ingestion_cursors", sa.Column("tail_fingerprint", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("ingestion_cursors", "tail_fingerprint")
