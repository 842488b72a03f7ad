"""`tally ui`: the Dagster webserver and daemon on 127.0.0.1, with run, event and schedule
storage in the canonical store's PostgreSQL server (its own `dagster` database)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import typer
from rich.console import Console

from pipelines.cli.context import failures_reported, store
from pipelines.instance import dagster_home

console = Console(stderr=True)
ROOT = Path(__file__).resolve().parents[2]


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
