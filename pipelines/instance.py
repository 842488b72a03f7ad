"""The Dagster instance that `tally ui`, its daemon and `tally materialize` share: run, event
and schedule storage in PostgreSQL, on the canonical store's server, in a database of its own
(`TALLY_DAGSTER_DATABASE`). Runs started from the command line are recorded there too, so the
UI's catalogue shows every materialisation, its checks and its metadata, whoever started it."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster import DagsterInstance

ROOT = Path(__file__).resolve().parents[1]
# One pooled connection per storage, and a few more while threads (the step workers' event
# writes) need them; none lives longer than an hour.
POOL_OVERFLOW = 4
POOL_RECYCLE_SECONDS = 3600


def ensure_database(url: str, database: str) -> None:
    """Create `database` on the server of `url` unless it exists (two commands starting at once
    may both try: the loser finds it made)."""
    import psycopg
    from psycopg import errors

    from ingestion.store import psycopg_conninfo

    with psycopg.connect(psycopg_conninfo(url), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            with contextlib.suppress(errors.DuplicateDatabase, errors.UniqueViolation):
                conn.execute(f'CREATE DATABASE "{database}"')


def dagster_home(url: str, data_dir: Path, database: str) -> dict[str, str]:
    """DAGSTER_HOME holding the repository's dagster.yaml, and the DAGSTER_PG_* variables
    that file reads."""
    from sqlalchemy.engine import make_url

    ensure_database(url, database)
    parsed = make_url(url)
    home = data_dir / "dagster"
    (home / "storage").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    return {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": parsed.host or "127.0.0.1",
        "DAGSTER_PG_PORT": str(parsed.port or 5432),
        "DAGSTER_PG_USER": parsed.username or "postgres",
        "DAGSTER_PG_PASSWORD": parsed.password or "",
        "DAGSTER_PG_DB": database,
        "DAGSTER_ARTIFACTS_DIR": str(home / "storage"),
        "DAGSTER_COMPUTE_LOGS_DIR": str(home / "logs"),
    }


def shared_instance(url: str, data_dir: Path, database: str) -> DagsterInstance:
    """The persistent instance, for runs executed in this process. Its storages keep their
    connections for the life of the process, as the webserver's do: by default dagster-postgres
    opens a new connection for every event it records, which made a run of 30 small partitions
    spend more time connecting than computing."""
    from dagster import DagsterInstance

    environment = dagster_home(url, data_dir, database)
    os.environ.update(environment)  # dagster.yaml reads them when the instance loads
    instance = DagsterInstance.from_config(environment["DAGSTER_HOME"])
    instance.optimize_for_webserver(
        statement_timeout=0, pool_recycle=POOL_RECYCLE_SECONDS, max_overflow=POOL_OVERFLOW
    )
    return instance
