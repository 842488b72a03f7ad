"""Alembic migrations of the canonical store.

`HEAD_REVISION` lets commands check the schema with one query instead of loading Alembic;
a test keeps it equal to the newest migration.
"""

HEAD_REVISION = "0010"


class UnknownRevision(RuntimeError):
    """The database is at a revision this tally has no migration for: a newer tally
    migrated it."""
