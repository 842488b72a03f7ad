"""The `tally` command line. Commands import their dependencies lazily so that quick
commands (a no-change ingest, a report) start fast."""

from __future__ import annotations

import typer

from pipelines.cli import (
    db,
    demo,
    ingest,
    keys,
    materialize,
    prices,
    quickstart,
    rejects,
    report,
    serve,
    ui,
)

app = typer.Typer(
    name="tally",
    help="Cost and attribution analytics for companies that run AI agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
app.add_typer(db.app, name="db")
app.add_typer(ingest.app, name="ingest")
app.add_typer(report.app, name="report")
app.add_typer(demo.app, name="demo")
app.command("rejects")(rejects.rejects)
app.add_typer(prices.app, name="prices")
app.add_typer(keys.app, name="keys")
app.command("serve")(serve.serve)
app.command("materialize")(materialize.materialize)
app.command("ui")(ui.ui)
app.command("run")(quickstart.run)

if __name__ == "__main__":
    app()
