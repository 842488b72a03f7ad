"""Decimals in responses as fixed-point text, every stored digit kept: pydantic writes
`str(Decimal)`, which turns to exponents below a millionth and for any zero of scale 12
("0E-12": a subscription's billed cost, a free cache price)."""

from decimal import Decimal
from typing import Annotated, Any

from pydantic import PlainSerializer

from schemas.money import decimal_text

FixedDecimal = Annotated[Decimal, PlainSerializer(decimal_text, return_type=str, when_used="json")]


def fixed_point_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Report rows with every decimal as fixed-point text: for the keys a response model keeps
    as extras, which no field type serialises."""
    return [
        {key: decimal_text(value) if isinstance(value, Decimal) else value
         for key, value in row.items()}
        for row in rows
    ]  # fmt: skip
