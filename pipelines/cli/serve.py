"""`tally serve`: the HTTP API (ingestion endpoints, governance writes, cost reads)."""

from __future__ import annotations

import os

import typer
from rich.markup import escape

from pipelines.cli.context import CommandFailed, err, failures_reported, store
from pipelines.cli.ports import cannot_listen

MAX_DEFAULT_WORKERS = 4


def default_workers() -> int:
    """One process per core: a single process leaves a core idle while it parses and
    answers, and its queue makes the latency tail at a few hundred requests/s. At most four,
    as each holds up to eight database connections (PostgreSQL allows 100 by default)."""
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    workers: int | None = typer.Option(
        None, "--workers", min=1, max=64, help="Server processes (default: one per CPU, at most 4)."
    ),
    max_body_mb: float = typer.Option(8.0, "--max-body-mb", min=0.01, help="Largest body."),
) -> None:
    """Serve the API with uvicorn until Ctrl-C. Keys: `tally keys create`."""
    import uvicorn

    with failures_reported():
        problem = cannot_listen(host, port)
        if problem:
            raise CommandFailed(problem)
        context = store()  # migrate once, here, before the workers start
    # every worker builds the app from the same settings
    os.environ["TALLY_DATABASE_URL"] = context.url
    os.environ["TALLY_WAREHOUSE_URL"] = context.settings.resolved_warehouse_url
    os.environ["TALLY_API_MAX_BODY_BYTES"] = str(int(max_body_mb * 1024 * 1024))
    processes = workers or default_workers()
    where = f"[{host}]" if ":" in host else host
    err.print(
        escape(f"tally API on http://{where}:{port} ({processes} processes; OpenAPI at /docs); ")
        + "Ctrl-C stops it"
    )
    uvicorn.run(
        "api.app:app_from_settings",
        factory=True,
        host=host,
        port=port,
        workers=processes,
        log_level="warning",
        access_log=False,
    )
