"""`tally rejects`: the records ingestion could not load, and why."""

from __future__ import annotations

import typer

from pipelines.cli.context import failures_reported, store
from pipelines.cli.output import OutputFormat, render

COLUMNS = ("id", "source", "location", "position", "reason", "excerpt", "run_id", "created_at")


def rejects(
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table, json or csv."),
    limit: int = typer.Option(200, "--limit", min=1, help="Newest N rejects."),
    source: str | None = typer.Option(None, "--source", help="Only this source."),
    run: int | None = typer.Option(
        None, "--run", min=1, help="Only those of this ingestion run (its summary names it)."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Only those recorded since this UTC day, YYYY-MM-DD."
    ),
) -> None:
    """The recorded rejects: source, where, the reason and the start of the record."""
    import psycopg

    from pipelines.cli.report import parse_day

    since_day = parse_day(since)
    with failures_reported():
        context = store()
        with psycopg.connect(context.conninfo) as conn, conn.cursor() as cur:
            cur.execute(
                f"""SELECT {", ".join(COLUMNS)} FROM ingestion_rejects
                    WHERE (%(source)s::text IS NULL OR source = %(source)s)
                      AND (%(run)s::bigint IS NULL OR run_id = %(run)s)
                      AND (%(since)s::date IS NULL
                           OR created_at >= %(since)s::date::timestamp AT TIME ZONE 'UTC')
                    ORDER BY id DESC LIMIT %(limit)s""",
                {"source": source, "limit": limit, "run": run, "since": since_day},
            )
            rows = [dict(zip(COLUMNS, row, strict=True)) for row in cur.fetchall()]
    for row in rows:
        row["created_at"] = row["created_at"].isoformat()
        if fmt is OutputFormat.table:
            row["excerpt"] = row["excerpt"][:80]
    render(rows, fmt, title="rejected records", columns=COLUMNS)
