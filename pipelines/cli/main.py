"""The `tally` command line. Commands import their dependencies lazily so that quick
commands (a no-change ingest, a report) start fast."""

from __future__ import annotations

import atexit
import logging
import os
import sys

import typer

from pipelines.cli import (
    db,
    demo,
    hook,
    ingest,
    keys,
    materialize,
    prices,
    quickstart,
    reconcile,
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
report.app.command("reconcile")(reconcile.reconcile)
app.add_typer(report.app, name="report")
app.add_typer(demo.app, name="demo")
app.command("rejects")(rejects.rejects)
app.add_typer(prices.app, name="prices")
app.add_typer(keys.app, name="keys")
app.add_typer(hook.app, name="hook")
app.command("serve")(serve.serve)
app.command("materialize")(materialize.materialize)
app.command("ui")(ui.ui)
app.command("run")(quickstart.run)


def main() -> None:
    """The console script, and only that: it ends the process (see `_end_process`)."""
    status = [1]
    atexit.register(_end_process, status)
    try:
        app()
        status[0] = 0
    except SystemExit as exit:
        code = exit.code
        status[0] = 0 if code is None else code if isinstance(code, int) else 1
        raise
    except KeyboardInterrupt:
        status[0] = 130
        raise


def _end_process(status: list[int]) -> None:
    """The last exit handler (registered first, so run last): every other one has run, the
    streams are flushed, and the process ends without the interpreter's teardown, whose last
    garbage collection walks every object polars, DuckDB and the price list loaded: 0.1-0.2 s
    of a one-second report. (`gc.freeze()` would skip that walk too, but then DuckDB's
    bindings list their types as leaked on stderr.) Only logging's handler was registered
    before this one: it runs here."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            status[0] = status[0] or 1
    os._exit(status[0])


if __name__ == "__main__":
    main()
