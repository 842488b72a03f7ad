"""`tally prices`: price overrides that win over the pricing library from a date on."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from pipelines.cli.context import CommandFailed, StoreContext, failures_reported, store
from pipelines.cli.output import OutputFormat, render
from pipelines.cli.report import parse_day
from schemas.money import USD_LIMIT

app = typer.Typer(help="Price overrides (USD per million tokens).", no_args_is_help=True)
# How long the note on days to re-materialise waits for a materialisation writing the
# warehouse.
WAREHOUSE_WAIT_SECONDS = 5.0
if TYPE_CHECKING:
    import psycopg

COLUMNS = (
    "id", "company", "provider", "model_pattern", "effective_from", "effective_to",
    "input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_5m_per_mtok",
    "cache_write_1h_per_mtok", "web_search_per_thousand", "note",
)  # fmt: skip
# `company`: the company an override is for (made through the API; it wins over one for
# every company), or null for every company (made with `tally prices set`).
SELECTED = ", ".join("c.slug" if column == "company" else f"o.{column}" for column in COLUMNS)


def _price(value: str | None, name: str) -> Decimal | None:
    if value is None:
        return None
    try:
        price = Decimal(value)
    except InvalidOperation:
        price = Decimal("NaN")
    if not price.is_finite():
        raise typer.BadParameter(f"{name} must be a number, got {value!r}")
    if price < 0:
        raise typer.BadParameter(f"{name} must not be negative")
    if price >= USD_LIMIT:
        raise typer.BadParameter(f"{name} must be below {USD_LIMIT:,} USD")
    return price


@app.command("list")
def list_overrides(
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table, json or csv."),
) -> None:
    """Every override, oldest first, with the company it is for (none: every company)."""
    import psycopg

    with failures_reported():
        context = store()
        with psycopg.connect(context.conninfo) as conn, conn.cursor() as cur:
            cur.execute(f"""SELECT {SELECTED} FROM price_overrides AS o
                            LEFT JOIN companies AS c ON c.id = o.company_id ORDER BY o.id""")
            rows = [dict(zip(COLUMNS, row, strict=True)) for row in cur.fetchall()]
    for row in rows:
        for key, value in row.items():
            if hasattr(value, "isoformat"):
                row[key] = value.isoformat()
    render(rows, fmt, title="price overrides", columns=COLUMNS)


@app.command("set")
def set_override(
    provider: str = typer.Option(..., "--provider", help="e.g. anthropic, openai."),
    model_pattern: str = typer.Option(
        ..., "--model", help="Regex (RE2 syntax) matching whole model names."
    ),
    effective_from: str = typer.Option(..., "--from", help="First day it applies (UTC)."),
    effective_to: str | None = typer.Option(None, "--to", help="First day it no longer applies."),
    input_price: str | None = typer.Option(None, "--input"),
    output_price: str | None = typer.Option(None, "--output"),
    cache_read: str | None = typer.Option(None, "--cache-read"),
    cache_write_5m: str | None = typer.Option(None, "--cache-write-5m"),
    cache_write_1h: str | None = typer.Option(None, "--cache-write-1h"),
    web_search: str | None = typer.Option(None, "--web-search-per-thousand"),
    note: str | None = typer.Option(None, "--note"),
) -> None:
    """Add an override. Categories left out keep the library's price. Re-materialise the
    days it covers for costs to change (`tally materialize --from D --to D`)."""
    import psycopg

    from ingestion.model_patterns import InvalidModelPattern, compile_model_pattern
    from ingestion.price_overrides import override_doubt

    try:
        compile_model_pattern(model_pattern)
    except InvalidModelPattern as error:
        raise typer.BadParameter(f"--model is {error}") from None
    start, end = parse_day(effective_from), parse_day(effective_to)
    if end is not None and start is not None and end <= start:
        raise typer.BadParameter("--to must be after --from")
    prices = {
        "input_per_mtok": _price(input_price, "--input"),
        "output_per_mtok": _price(output_price, "--output"),
        "cache_read_per_mtok": _price(cache_read, "--cache-read"),
        "cache_write_5m_per_mtok": _price(cache_write_5m, "--cache-write-5m"),
        "cache_write_1h_per_mtok": _price(cache_write_1h, "--cache-write-1h"),
        "web_search_per_thousand": _price(web_search, "--web-search-per-thousand"),
    }
    if all(value is None for value in prices.values()):
        raise typer.BadParameter("give at least one price")
    with failures_reported():
        context = store()
        with psycopg.connect(context.conninfo) as conn, conn.transaction():
            row = conn.execute(
                f"""INSERT INTO price_overrides (provider, model_pattern, effective_from,
                        effective_to, note, {", ".join(prices)})
                    VALUES (%s, %s, %s, %s, %s, {", ".join(["%s"] * len(prices))})
                    RETURNING id""",
                (provider, model_pattern, start, end, note, *prices.values()),
            ).fetchone()
            assert row is not None
            after = {
                "provider": provider, "model_pattern": model_pattern,
                "effective_from": str(start), "effective_to": str(end) if end else None,
                **{k: str(v) for k, v in prices.items() if v is not None},
            }  # fmt: skip
            _audit(conn, context.settings.company, "price_override.created", str(row[0]),
                   None, after)  # fmt: skip
            # the override is of no company: every company's usage may meet it
            doubt = override_doubt(conn, None, provider, model_pattern)
    typer.echo(f"override {row[0]} added")
    if doubt:
        from pipelines.cli.context import err

        err.print(f"[yellow]warning:[/] {escape(doubt)}")
    assert start is not None  # --from is required
    _name_days_to_rematerialise(
        context, provider, model_pattern, start, end, "usage it covers is stored priced without it"
    )


@app.command("delete")
def delete_override(override_id: int = typer.Argument(..., help="The override's id.")) -> None:
    """Remove an override (past windows keep their costs until re-materialised)."""
    import psycopg

    with failures_reported():
        context = store()
        with psycopg.connect(context.conninfo) as conn, conn.transaction():
            row = conn.execute(
                """DELETE FROM price_overrides WHERE id = %s
                   RETURNING provider, model_pattern, effective_from, effective_to""",
                (override_id,),
            ).fetchone()
            if row is None:
                raise CommandFailed(f"no price override with id {override_id}")
            _audit(conn, context.settings.company, "price_override.deleted", str(override_id),
                   {"provider": row[0], "model_pattern": row[1]}, None)  # fmt: skip
    typer.echo(f"override {override_id} deleted")
    _name_days_to_rematerialise(context, *row, "usage it covered may be stored priced with it")


def _name_days_to_rematerialise(
    context: StoreContext,
    provider: str,
    model_pattern: str,
    start: date,
    end: date | None,
    pricing: str,
) -> None:
    """Which materialised days keep the costs they were priced at, and the command that
    re-prices them: a finance user who set an override and saw the same report took the
    override for broken. (Days the warehouse is behind on, reports price live, with it.)"""
    from ingestion.price_overrides import rematerialise_note
    from pipelines.cli.context import err

    note = rematerialise_note(context.settings.resolved_warehouse_url, provider, model_pattern,
                              start, end, pricing, wait_seconds=WAREHOUSE_WAIT_SECONDS)  # fmt: skip
    if note:
        err.print(f"note: {escape(note)}")


def _audit(
    conn: psycopg.Connection[Any],
    company: str,
    action: str,
    entity_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """The activity_log row every governance write leaves."""
    import orjson

    from ingestion.loader import ensure_company

    conn.execute(
        """INSERT INTO activity_log (company_id, actor_type, actor_id, action, entity_type,
               entity_id, before, after, occurred_at)
           VALUES (%s, 'cli', 'tally prices', %s, 'price_override', %s, %s, %s, %s)""",
        (ensure_company(conn, company), action, entity_id,
         None if before is None else orjson.dumps(before).decode(),
         None if after is None else orjson.dumps(after).decode(), datetime.now(UTC)),
    )  # fmt: skip
