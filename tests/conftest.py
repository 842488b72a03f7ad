"""Test fixtures: a real PostgreSQL for every test that needs one.

Order of preference: TALLY_TEST_PG_URL; a server on 127.0.0.1:5432 (trust auth, as on the
development machines); else a throwaway cluster started here and removed afterwards. Each
xdist worker migrates one template database; each test gets its own clone of it, so tests
never share rows and runs never collide.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from ingestion.settings import get_settings

RUN_ID = uuid.uuid4().hex[:8]


def _server_reachable(url: str) -> bool:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A superuser URL to the `postgres` database of a running server."""
    explicit = os.environ.get("TALLY_TEST_PG_URL")
    if explicit:
        yield explicit
        return
    local = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    if _server_reachable(local):
        yield local
        return
    from ingestion.postgres.embedded import EmbeddedPostgres

    root = Path(tempfile.mkdtemp(prefix="tally-test-pg-"))
    server = EmbeddedPostgres(root, durable=False)
    url = server.ensure_running()
    try:
        yield str(make_url(url).set(database="postgres"))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
        location = Path("/var/lib/tally")
        if location.exists():
            for leftover in location.glob("pg-*"):
                if not any(leftover.iterdir()):
                    leftover.rmdir()


def _admin(url: str) -> psycopg.Connection:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(conninfo, autocommit=True)


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> Iterator[str]:
    from schemas.migrations.runner import upgrade

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"tally_tpl_{RUN_ID}_{worker}"
    with _admin(pg_server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = str(make_url(pg_server_url).set(database=name))
    upgrade(url)
    yield name
    with _admin(pg_server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(pg_server_url: str, template_db: str) -> Iterator[str]:
    """A freshly migrated database of this test's own."""
    name = f"tally_t_{uuid.uuid4().hex[:12]}"
    with _admin(pg_server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield str(make_url(pg_server_url).set(database=name))
    with _admin(pg_server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def conninfo(db_url: str) -> str:
    return make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def tally_env(
    monkeypatch: pytest.MonkeyPatch, db_url: str, pg_server_url: str, tmp_path: Path
) -> Iterator[Path]:
    """Point every TALLY_* setting at this test's database and directories (and forget any
    the caller's environment set). Dagster's storage, should a command create it, is the
    test's own database too, dropped afterwards."""
    for name in [
        key for key in os.environ if key.startswith("TALLY_") and key != "TALLY_TEST_PG_URL"
    ]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TALLY_DATABASE_URL", db_url)
    monkeypatch.setenv("TALLY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TALLY_CLAUDE_DIR", str(tmp_path / "claude" / "projects"))
    monkeypatch.setenv("TALLY_CODEX_DIR", str(tmp_path / "codex" / "sessions"))
    dagster_database = f"{make_url(db_url).database}_dagster"
    monkeypatch.setenv("TALLY_DAGSTER_DATABASE", dagster_database)
    dagster_environment = {k: v for k, v in os.environ.items() if k.startswith("DAGSTER_")}
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    # `tally materialize` sets DAGSTER_* for the instance it opens: put them back as they were
    for name in [key for key in os.environ if key.startswith("DAGSTER_")]:
        del os.environ[name]
    os.environ.update(dagster_environment)
    with _admin(pg_server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dagster_database}" WITH (FORCE)')
