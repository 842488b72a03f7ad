"""Decimals at the API's edge.

In requests, a decimal is a JSON number or a decimal in text (`DecimalText`). In responses it
is fixed-point text, every stored digit kept (`FixedDecimal`): pydantic writes `str(Decimal)`,
which turns to exponents below a millionth and for any zero of scale 12 ("0E-12": a
subscription's billed cost, a free cache price)."""

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, PlainSerializer
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from schemas.money import decimal_text

FixedDecimal = Annotated[Decimal, PlainSerializer(decimal_text, return_type=str, when_used="json")]

# A decimal in text: digits with an optional point and exponent, blanks around it allowed.
DECIMAL_TEXT_PATTERN = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
_DECIMAL_TEXT = re.compile(DECIMAL_TEXT_PATTERN, re.ASCII)


def _decimal_text_only(value: Any) -> Any:
    if isinstance(value, str) and not _DECIMAL_TEXT.match(value):
        raise ValueError("a decimal number is digits with an optional point, e.g. 12.5")
    return value


@dataclass(frozen=True)
class DecimalText:
    """A decimal field's text form, as the OpenAPI document states it and as the API takes it.

    Left to pydantic, the document says "any string" and the API takes what Python's
    `Decimal` parses (`1_000`, digits of other scripts): a client built from the document
    would learn of either rule only from a 422. Both now follow `DECIMAL_TEXT_PATTERN`."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(_decimal_text_only, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        for branch in json_schema.get("anyOf", [json_schema]):
            if branch.get("type") == "string":
                branch["pattern"] = DECIMAL_TEXT_PATTERN
        return json_schema


def fixed_point_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Report rows with every decimal as fixed-point text: for the keys a response model keeps
    as extras, which no field type serialises."""
    return [
        {key: decimal_text(value) if isinstance(value, Decimal) else value
         for key, value in row.items()}
        for row in rows
    ]  # fmt: skip
