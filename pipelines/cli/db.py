"""`tally db`: the canonical store's schema and the embedded server."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from pipelines.cli.context import failures_reported, store

app = typer.Typer(help="The canonical PostgreSQL store.", no_args_is_help=True)
console = Console()


@app.command()
def upgrade() -> None:
    """Apply the migrations (starting the embedded server if no URL is configured)."""
    with failures_reported():
        from schemas.migrations.runner import current_revision, upgrade

        context = store(migrate=False)
        upgrade(context.url)
        console.print(f"schema at revision [bold]{current_revision(context.url)}[/]")


@app.command()
def status() -> None:
    """Where the database is, whether it runs, and its schema revision."""
    with failures_reported():
        from sqlalchemy.engine import make_url

        from ingestion.settings import get_settings
        from ingestion.store import embedded_server
        from schemas.migrations import HEAD_REVISION, UnknownRevision
        from schemas.migrations.runner import check_known, current_revision

        settings = get_settings()
        if settings.database_url:
            url = settings.database_url
            console.print("database: [bold]external[/] (TALLY_DATABASE_URL)")
        else:
            server = embedded_server(settings)
            state = server.status()
            console.print(
                f"database: [bold]embedded[/] PostgreSQL in {escape(str(state.data_dir))}"
            )
            if not state.running:
                console.print("server:   [yellow]stopped[/] (any tally command starts it)")
                return
            console.print(f"server:   running on 127.0.0.1:{state.port}")
            url = state.url or ""
        console.print(f"url:      {escape(make_url(url).render_as_string(hide_password=True))}")
        revision = current_revision(url)
        marker = "up to date" if revision == HEAD_REVISION else f"head is {HEAD_REVISION}"
        try:
            check_known(revision)
        except UnknownRevision:
            marker += "; a newer tally migrated it"
        console.print(f"revision: {revision or 'none (run tally db upgrade)'} ({marker})")


@app.command()
def recount() -> None:
    """Count the per-day usage totals again from the events. They are kept by triggers as
    events change; run this if they could have gone wrong: after a data-only restore that ran
    the triggers on top of restored totals, or after disabling the triggers by hand."""
    with failures_reported():
        import psycopg

        from ingestion.usage_day_deltas import recount_usage_day_deltas

        context = store()
        with psycopg.connect(context.conninfo, autocommit=True) as conn:
            days = recount_usage_day_deltas(conn)
        console.print(f"per-day usage totals counted again: {days:,} days")


@app.command("drop-posted-copies")
def drop_posted_copies(
    dry_run: bool = typer.Option(False, "--dry-run", help="List the copies, drop nothing."),
) -> None:
    """Drop the requests posted over the API that another source also holds (a transcript's
    requests posted as `api`), which every report counts twice; the transcript's copy stays.
    The pricing check one_source_per_request calls them out."""
    with failures_reported():
        import psycopg

        from ingestion.posted_copies import posted_copies

        context = store()
        with psycopg.connect(context.conninfo) as conn:
            found = posted_copies(conn, drop=not dry_run)
    if not found:
        console.print("no posted request is held by another source too")
        return
    for copies in found:
        posted, kept = escape(copies.posted_as), escape(copies.kept_as)
        console.print(f"{copies.day}: {copies.requests:,} requests posted as {posted}, "
                      f"also held as {kept}")  # fmt: skip
    total = sum(copies.requests for copies in found)
    first, last = found[0].day, found[-1].day
    if dry_run:
        console.print(f"{total:,} posted copies would be dropped (run without --dry-run)")
        return
    console.print(f"dropped {total:,} posted copies; the days they were on keep their costs "
                  f"until `tally materialize --from {first} --to {last}`")  # fmt: skip


@app.command()
def stop() -> None:
    """Stop the embedded PostgreSQL server."""
    with failures_reported():
        from ingestion.settings import get_settings
        from ingestion.store import embedded_server

        settings = get_settings()
        if settings.database_url:
            console.print("TALLY_DATABASE_URL is set: there is no embedded server to stop")
            return
        stopped = embedded_server(settings).stop()
        console.print("embedded server stopped" if stopped else "embedded server was not running")
