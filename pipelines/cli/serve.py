"""`tally serve`: the HTTP API (ingestion endpoints, governance writes, cost reads)."""

from __future__ import annotations

import typer

from pipelines.cli.context import failures_reported, store


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    max_body_mb: float = typer.Option(8.0, "--max-body-mb", min=0.01, help="Largest body."),
) -> None:
    """Serve the API with uvicorn until Ctrl-C. Keys: `tally keys create`."""
    import uvicorn

    from api.app import create_app

    with failures_reported():
        context = store()
        app = create_app(context.url, context.settings.resolved_warehouse_url,
                         max_body_bytes=int(max_body_mb * 1024 * 1024))  # fmt: skip
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
