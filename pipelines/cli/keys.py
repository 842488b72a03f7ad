"""`tally keys`: API keys for agents, hooks, services and the board."""

from __future__ import annotations

import sys

import orjson
import typer
from rich.markup import escape

from pipelines.cli.context import CommandFailed, err, failures_reported, store
from pipelines.cli.output import OutputFormat, render

app = typer.Typer(help="API keys (bearer tokens for `tally serve`).", no_args_is_help=True)


@app.command("create")
def create(
    company: str = typer.Option(..., "--company", help="Company slug; created if it is new."),
    role: str = typer.Option(..., "--role", help="agent, board or service."),
    agent: str | None = typer.Option(None, "--agent", help="The agent an agent key acts as."),
    name: str | None = typer.Option(None, "--name", help="A label for listings."),
    fmt: OutputFormat = typer.Option(
        OutputFormat.table, "--format", help="table (the key alone), json or csv (id and key)."
    ),
) -> None:
    """Create a key and print it once: only its digest is stored."""
    import psycopg

    from ingestion.keys import KeyProblem, create_key

    with failures_reported():
        context = store()
        with psycopg.connect(context.conninfo) as conn:
            try:
                key_id, key, created = create_key(conn, company, role, agent, name)
            except KeyProblem as error:
                raise CommandFailed(str(error)) from None
    if created:  # a misspelt name would otherwise give a key that sees nothing, silently
        err.print(f"created {escape(' and '.join(created))} (new: no such one existed)")
        ingested_into = context.settings.company
        if company.strip() != ingested_into:
            err.print(f"note: agent logs, Paperclip, Pigeon and git load into company "
                      f"'{escape(ingested_into)}' (TALLY_COMPANY): what this key posts meets "
                      "their issues, runs and projects only under that company")  # fmt: skip
    if fmt is OutputFormat.json:
        sys.stdout.write(orjson.dumps({"id": key_id, "key": key}).decode() + "\n")
        return
    if fmt is OutputFormat.csv:
        render([{"id": key_id, "key": key}], fmt)
        return
    err.print(
        f"key {key_id} ({escape(role)}) for {escape(company)}: store it now, it is not shown again"
    )
    typer.echo(key)


@app.command("list")
def list_(
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table, json or csv."),
) -> None:
    """Every key: company, agent, role, public prefix, created, last used, revoked."""
    import psycopg

    from ingestion.keys import list_keys

    with failures_reported():
        context = store()
        with psycopg.connect(context.conninfo) as conn:
            rows = list_keys(conn)
    for row in rows:
        for column in ("created_at", "last_used_at", "revoked_at"):
            if row[column] is not None:
                row[column] = row[column].isoformat()
    render(rows, fmt, title="API keys")


@app.command("revoke")
def revoke(
    key_id: int = typer.Argument(..., help="The key's id (from `tally keys list`)."),
) -> None:
    """Revoke a key: every request with it is refused from now on."""
    import psycopg

    from ingestion.keys import KeyProblem, revoke_key

    with failures_reported():
        context = store()
        with psycopg.connect(context.conninfo) as conn:
            try:
                revoked_at = revoke_key(conn, key_id)
            except KeyProblem as error:
                raise CommandFailed(str(error)) from None
    err.print(f"key {key_id} revoked at {revoked_at.isoformat()}")
