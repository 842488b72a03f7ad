"""Requests posted over the API that another source also holds: found, or dropped.

A hook that posts a transcript's requests as `api` while tally reads the transcript stores
each request twice (the natural key holds the source), and every report counts it twice; the
pricing asset's `one_source_per_request` check calls it out. The copy dropped is the posted
one: of a posted copy and a transcript's, the transcript's stays (the exact record); of two
posted copies, the one under the source that sorts last (a tool's name over `api`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg


def copies_sql(window: str = "") -> str:
    """One row per posted copy (`id`, its UTC `day`, `posted_as`, `kept_as`: the source whose
    copy stays, and its `tokens`): the requests of origin `api` that another source holds
    too, each looked up in the unique index (company, source, message, request) for every
    other source. `window`: a condition on `a.occurred_at`, applied before the lookups (so
    that a window's check reads the window's posted requests, through their partial index,
    and not all of them)."""
    return f"""
SELECT a.id, (a.occurred_at AT TIME ZONE 'UTC')::date AS day, a.source AS posted_as,
       min(t.source) AS kept_as,
       a.input_tokens + a.output_tokens + a.cache_read_tokens + a.cache_write_5m_tokens
         + a.cache_write_1h_tokens AS tokens
FROM token_usage_events AS a
JOIN token_usage_events AS t
  ON t.company_id = a.company_id
 AND t.source = ANY (ARRAY(SELECT DISTINCT source FROM agent_sessions)) AND t.source <> a.source
 AND t.message_id = a.message_id AND t.request_id = a.request_id
 AND (t.origin <> 'api' OR t.source > a.source)  -- two posted copies: one pair, not two
WHERE a.origin = 'api' {f"AND {window}" if window else ""}
GROUP BY a.id
"""


@dataclass(frozen=True)
class PostedCopies:
    day: date
    posted_as: str
    kept_as: str
    requests: int


def posted_copies(conn: psycopg.Connection[Any], *, drop: bool) -> list[PostedCopies]:
    """The posted copies by day and pair of sources; with `drop`, deleted (the per-day
    totals follow through the table's triggers)."""
    if drop:
        sql = f"""WITH copies AS ({copies_sql()}),
                  dropped AS (DELETE FROM token_usage_events AS e USING copies AS c
                              WHERE e.id = c.id RETURNING c.day, c.posted_as, c.kept_as)
                  SELECT day, posted_as, kept_as, count(*) FROM dropped
                  GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
    else:
        sql = f"""SELECT day, posted_as, kept_as, count(*) FROM ({copies_sql()}) AS c
                  GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
    with conn.transaction():
        return [PostedCopies(*row) for row in conn.execute(sql).fetchall()]
