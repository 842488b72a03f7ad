"""Exact USD as the canonical store keeps it: NUMERIC(24, 12), so 12 decimals (a request can
cost $0.00000008) and values below 10^12. Plain constants, importable without SQLAlchemy so
that quick commands stay quick."""

from __future__ import annotations

from decimal import Decimal

USD_PRECISION = 24
USD_SCALE = 12
# From this value up a USD column overflows.
USD_LIMIT = Decimal(10) ** (USD_PRECISION - USD_SCALE)
