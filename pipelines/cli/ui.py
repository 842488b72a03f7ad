"""`tally ui`: the Dagster webserver and daemon on 127.0.0.1, with run, event and schedule
storage in the canonical store's PostgreSQL server (its own `dagster` database)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import typer
from rich.console import Console

from pipelines.cli.context import failures_reported, store

console = Console(stderr=True)
ROOT = Path(__file__).resolve().parents[2]


def dagster_home(url: str, data_dir: Path, database: str) -> dict[str, str]:
    """DAGSTER_HOME with the repository's dagster.yaml, and the PG settings it reads."""
    import psycopg
    from sqlalchemy.engine import make_url

    from ingestion.store import psycopg_conninfo

    parsed = make_url(url)
    with psycopg.connect(psycopg_conninfo(url), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
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


def ui(
    port: int = typer.Option(3000, "--port", help="Port on 127.0.0.1."),
) -> None:
    """Start the Dagster UI and daemon; Ctrl-C stops both."""
    with failures_reported():
        context = store()
        env = {
            **os.environ,
            **dagster_home(
                context.url,
                context.settings.resolved_data_dir,
                context.settings.dagster_database,
            ),
            "TALLY_DATABASE_URL": context.url,
        }
    command = [
        str(Path(sys.executable).parent / "dagster"), "dev", "-m", "pipelines.definitions",
        "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    console.print(f"Dagster UI on http://127.0.0.1:{port} (Ctrl-C stops it)")
    # Our own process group, with SIGINT restored: dagster copies SIGINT's disposition to
    # SIGTERM, so an inherited "ignore" would make it unstoppable (reference/dagster.md G7).
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        process.wait()
    except KeyboardInterrupt:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        console.print("stopped")
