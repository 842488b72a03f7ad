"""Exact USD as the canonical store keeps it: NUMERIC(24, 12), so 12 decimals (a request can
cost $0.00000008) and values below 10^12. Plain constants, importable without SQLAlchemy so
that quick commands stay quick."""

from __future__ import annotations

from decimal import Decimal

USD_PRECISION = 24
USD_SCALE = 12
# From this value up a USD column overflows.
USD_LIMIT = Decimal(10) ** (USD_PRECISION - USD_SCALE)


def decimal_text(value: Decimal) -> str:
    """A decimal as fixed-point text, every stored digit kept ("0.000000000000",
    "0.000000080000"): `str()` turns to exponents below a millionth and for a zero of scale 12
    ("0E-12", which a spreadsheet or a strict decimal parser reads wrong, or not at all)."""
    return format(value, "f")
