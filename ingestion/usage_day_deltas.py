"""Fold the per-day usage changes the triggers append (`usage_day_deltas`, migration 0006)
into one row per day, so that reading a day's totals stays a few rows whatever the number of
statements that changed it."""

from __future__ import annotations

from typing import Any

import psycopg

TOKENS = (
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
)

# One statement: the rows it deletes are exactly the rows it sums, so changes that other
# transactions append meanwhile (invisible to it) are neither lost nor counted twice.
FOLD = f"""
WITH folded AS (
    DELETE FROM usage_day_deltas
    WHERE day IN (SELECT day FROM usage_day_deltas GROUP BY day HAVING count(*) > 1)
    RETURNING day, requests, {", ".join(TOKENS)}
)
INSERT INTO usage_day_deltas (day, requests, {", ".join(TOKENS)})
SELECT day, sum(requests), {", ".join(f"sum({t})" for t in TOKENS)}
FROM folded GROUP BY day
HAVING sum(requests) <> 0 OR {" OR ".join(f"sum({t}) <> 0" for t in TOKENS)}
ORDER BY day
"""


def fold_usage_day_deltas(conn: psycopg.Connection[Any]) -> None:
    conn.execute(FOLD)
