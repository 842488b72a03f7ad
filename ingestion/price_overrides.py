"""What a price override written now means for the usage there is: why it may never apply,
told when it is written (the CLI prints it as a warning and the API returns it in
`warnings`; the override is kept either way: it may be meant for usage still to come), and
which materialised days hold usage it covers, whose stored costs it changes only once they are
re-materialised."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from ingestion.model_patterns import stored_model_pattern

if TYPE_CHECKING:
    import psycopg

    from ingestion.warehouse.base import Warehouse


def override_doubt(
    conn: psycopg.Connection[Any], company_id: int | None, provider: str, model_pattern: str
) -> str | None:
    """A provider with no usage that the pricing library does not know either (a typo?), or a
    pattern that matches none of the provider's models seen so far; None when it applies.
    The usage is the company's, or every company's for an override of no company."""
    seen: dict[str, list[str]] = {}
    for seen_provider, model in conn.execute(
        "SELECT DISTINCT provider, model FROM token_usage_events "
        "WHERE %(company)s::bigint IS NULL OR company_id = %(company)s ORDER BY 1, 2",
        {"company": company_id},
    ).fetchall():
        seen.setdefault(seen_provider, []).append(model)
    if provider not in seen:
        from genai_prices.data_snapshot import get_snapshot

        if any(known.id == provider for known in get_snapshot().providers):
            return None
        with_usage = ", ".join(seen) or "none yet"
        return (
            f"no usage is from provider {provider!r} and the pricing library does not know it: "
            f"is it spelt as the usage has it? (providers with usage: {with_usage})"
        )
    pattern = stored_model_pattern(model_pattern)
    if any(pattern.fullmatch(model) for model in seen[provider]):
        return None
    examples = ", ".join(seen[provider][:5])
    return (
        f"{model_pattern!r} matches none of the {len(seen[provider])} {provider} models with "
        f"usage so far (the whole name must match), e.g. {examples}"
    )


def materialised_days_covered(
    warehouse: Warehouse,
    provider: str,
    model_pattern: str,
    start: date,
    end: date | None,
    company_id: int | None = None,
) -> list[date]:
    """The days of [start, end) whose priced usage in the warehouse holds requests of
    `provider` (of the company, for an override of one) that `model_pattern` matches: they
    were priced without the override (or, when it is deleted, with it) and keep those costs
    until re-materialised."""
    from schemas.warehouse import USAGE_PRICED

    warehouse.ensure_table(USAGE_PRICED)
    seen = warehouse.query(
        """SELECT DISTINCT model, day FROM usage_priced
           WHERE provider = $provider AND day >= $start AND day < $end
             AND ($company IS NULL OR company_id = $company)""",
        {"provider": provider, "start": start, "end": end or date(9999, 12, 31),
         "company": company_id},
    )  # fmt: skip
    pattern = stored_model_pattern(model_pattern)
    return sorted({day for model, day in seen.iter_rows() if pattern.fullmatch(model) is not None})


def rematerialise_note(
    warehouse_url: str,
    provider: str,
    model_pattern: str,
    start: date,
    end: date | None,
    pricing: str,
    *,
    company_id: int | None = None,
    wait_seconds: float,
) -> str | None:
    """What to tell of the materialised days an override write leaves as they were, and the
    command that re-prices them; None when there are none. `pricing` says how they were
    priced ("usage it covers is stored priced without it"). The warehouse is waited for
    `wait_seconds` at most: the write stands either way, and the note says when it could not
    tell."""
    from ingestion.warehouse.base import open_warehouse
    from ingestion.warehouse.errors import WarehouseUnavailable

    try:
        warehouse = open_warehouse(warehouse_url, lock_wait_seconds=wait_seconds)
        with warehouse.held():
            days = materialised_days_covered(warehouse, provider, model_pattern, start, end,
                                             company_id)  # fmt: skip
    except WarehouseUnavailable as error:
        return (f"which materialised days it covers could not be told ({error}); their "
                "stored costs change once they are re-materialised")  # fmt: skip
    if not days:
        return None
    count = "1 materialised day" if len(days) == 1 else f"{len(days)} materialised days"
    span = str(days[0]) if len(days) == 1 else f"{days[0]} to {days[-1]}"
    return (
        f"{pricing} on {count} ({span}); their costs change once re-materialised: "
        f"tally materialize --from {days[0]} --to {days[-1]}"
    )
