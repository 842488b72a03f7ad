"""Run ingestion in-process and snapshot what it stored, for comparisons between runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from ingestion.runner import IngestRun, IngestSummary
from ingestion.sources import CLAUDE_CODE, CODEX, FileSource


def ingest(
    conninfo: str,
    source: FileSource,
    root: Path,
    batch_rows: int = 20_000,
    max_line_bytes: int = 64 << 20,
    workers: int = 0,
) -> IngestSummary:
    """Inline by default; `workers=2` takes the worker-process path at any size."""
    return IngestRun(
        conninfo,
        source,
        root,
        company="local",
        batch_rows=batch_rows,
        max_line_bytes=max_line_bytes,
        workers=workers,
        parallel_min_bytes=0,
    ).run()


def ingest_corpus(conninfo: str, root: Path, **kwargs: Any) -> list[IngestSummary]:
    return [
        ingest(conninfo, CLAUDE_CODE, root / "claude" / "projects", **kwargs),
        ingest(conninfo, CODEX, root / "codex" / "sessions", **kwargs),
    ]


def snapshot(conninfo: str) -> dict[str, list[tuple[Any, ...]]]:
    """Everything ingestion wrote, without surrogate ids and bookkeeping timestamps."""
    with psycopg.connect(conninfo) as conn:
        usage = conn.execute("""
            SELECT e.source, e.message_id, e.request_id, e.occurred_at, s.session_key, e.model,
                   e.input_tokens, e.output_tokens, e.reasoning_tokens, e.cache_read_tokens,
                   e.cache_write_5m_tokens, e.cache_write_1h_tokens, e.web_search_requests,
                   e.reported_cost_usd, e.is_sidechain, e.origin, e.source_path, e.source_offset
            FROM token_usage_events e JOIN agent_sessions s ON s.id = e.session_id
            ORDER BY 1, 2, 3""").fetchall()
        sessions = conn.execute("""
            SELECT s.source, s.session_key, p.session_key, r.session_key, s.is_subagent,
                   s.project_path, s.git_branch, s.client_version, s.first_activity_at,
                   s.last_activity_at
            FROM agent_sessions s
            LEFT JOIN agent_sessions p ON p.id = s.parent_session_id
            LEFT JOIN agent_sessions r ON r.id = s.root_session_id
            ORDER BY 1, 2""").fetchall()
        tools = conn.execute("""
            SELECT t.source, t.call_key, s.session_key, t.tool_name, t.mcp_server, t.started_at,
                   t.ended_at, t.duration_ms, t.success, t.result_chars, t.file_paths,
                   t.commit_hashes
            FROM tool_calls t LEFT JOIN agent_sessions s ON s.id = t.session_id
            ORDER BY 1, 2""").fetchall()
        rejects = conn.execute(
            "SELECT source, location, position, reason FROM ingestion_rejects ORDER BY 1, 2, 3, 4"
        ).fetchall()
    return {"usage": usage, "sessions": sessions, "tools": tools, "rejects": rejects,
            "day_totals": day_totals_kept(conninfo)}  # fmt: skip


def day_totals_kept(conninfo: str) -> list[tuple[Any, ...]]:
    """Requests and tokens per UTC day as the triggers keep them (`usage_day_deltas`)."""
    return _day_totals(conninfo, "day", "sum(requests)", "usage_day_deltas",
                       "GROUP BY day HAVING sum(requests) <> 0")  # fmt: skip


def day_totals_counted(conninfo: str) -> list[tuple[Any, ...]]:
    """The same, counted from the events themselves (per-session rollups left out)."""
    day = "(occurred_at AT TIME ZONE 'UTC')::date"
    return _day_totals(conninfo, day, "count(*)", "token_usage_events",
                       "WHERE origin <> 'session_rollup' GROUP BY 1")  # fmt: skip


def _day_totals(conninfo: str, day: str, requests: str, table: str, rest: str) -> list[Any]:
    from schemas.warehouse import TOKEN_NAMES

    sums = ", ".join(f"sum({t})" for t in TOKEN_NAMES)
    with psycopg.connect(conninfo) as conn:
        query = f"SELECT {day}, {requests}, {sums} FROM {table} {rest} ORDER BY 1"
        return conn.execute(query).fetchall()


def totals_by_root_session(conninfo: str) -> dict[tuple[str, str], dict[str, int]]:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute("""
            SELECT e.source, r.session_key, count(*), sum(e.input_tokens), sum(e.output_tokens),
                   sum(e.reasoning_tokens), sum(e.cache_read_tokens),
                   sum(e.cache_write_5m_tokens), sum(e.cache_write_1h_tokens)
            FROM token_usage_events e
            JOIN agent_sessions s ON s.id = e.session_id
            JOIN agent_sessions r ON r.id = COALESCE(s.root_session_id, s.id)
            GROUP BY 1, 2""").fetchall()
    names = (
        "requests",
        "input_tokens",
        "output_tokens",
        "reasoning_tokens",
        "cache_read_tokens",
        "cache_write_5m_tokens",
        "cache_write_1h_tokens",
    )
    return {(row[0], row[1]): dict(zip(names, map(int, row[2:]), strict=True)) for row in rows}
