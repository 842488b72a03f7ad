"""MCP tool-call logs: both field spellings, rejects with reasons, idempotent loads."""

from __future__ import annotations

import orjson
import psycopg
from typer.testing import CliRunner

from ingestion.adapters.mcp_tool_calls import McpToolCallParser
from ingestion.batch import Batch
from pipelines.cli.main import app
from tests.builders import write_jsonl

runner = CliRunner()
SNAKE = {"id": "c1", "tool": "getBoard", "server": "pigeon", "session": "mcp-1",
         "started_at": "2026-10-03T10:00:00Z", "duration_ms": 250, "success": True,
         "response_chars": 4000}  # fmt: skip
CAMEL = {"toolName": "mcp__github__get_pr", "sessionId": "mcp-1",
         "createdAt": "2026-10-03T10:01:00.500Z", "durationMs": 40, "success": False,
         "errorMessage": "rate limited", "responseTokens": 12}  # fmt: skip


def test_tool_call_logs_load_once_and_bad_lines_are_rejected(tally_env, conninfo):
    log = write_jsonl(
        tally_env / "mcp" / "calls.log",
        [
            SNAKE,
            CAMEL,
            {"sessionId": "mcp-1", "createdAt": "2026-10-03T10:02:00Z"},  # no tool
            {**SNAKE, "id": "c9", "success": "yes"},
            {**SNAKE, "id": "c8", "duration_ms": -5},
            {**SNAKE, "id": "c7", "tool": 1},
            b"{not json",
        ],
    )
    result = runner.invoke(app, ["ingest", "tool-calls", "--path", str(log)])
    assert result.exit_code == 0, result.output
    # the same calls again, in a copy under another name: same keys, no new rows
    copy = tally_env / "mcp-copy" / "calls.jsonl"
    copy.parent.mkdir()
    copy.write_bytes(log.read_bytes())
    again = runner.invoke(app, ["ingest", "tool-calls", "--path", str(copy.parent)])
    assert again.exit_code == 0, again.output
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            """SELECT t.call_key, t.tool_name, t.mcp_server, t.duration_ms, t.success,
                      t.result_chars, t.result_tokens_estimate, t.error_message, s.source,
                      s.session_key
               FROM tool_calls t JOIN agent_sessions s ON s.id = t.session_id
               ORDER BY t.started_at"""
        ).fetchall()
    assert rows[0] == ("c1", "getBoard", "pigeon", 250, True, 4000, 1000, None, "mcp", "mcp-1")
    assert rows[1][1:8] == ("mcp__github__get_pr", "github", 40, False, None, 12,
                            "rate limited")  # fmt: skip
    assert len(rows) == 2
    rejects = orjson.loads(runner.invoke(app, ["rejects", "--format", "json"]).stdout)
    reasons = sorted(r["reason"] for r in rejects)
    assert len(reasons) == 10  # five bad lines in each of the two files
    assert "tool call without a tool name" in reasons
    assert "the tool name must be text, got 1" in reasons
    assert any("success must be true or false" in r for r in reasons)
    assert any("duration_ms must be a non-negative integer" in r for r in reasons)
    assert any(r.startswith("invalid JSON") for r in reasons)


def test_a_numeric_call_id_is_kept_as_text_and_other_shapes_are_rejected(tmp_path):
    """JSON-RPC ids are text or numbers; a list or an object is no id, and says so."""
    parser, batch = McpToolCallParser(tmp_path / "calls.jsonl"), Batch()
    lines = [{**SNAKE, "id": 42}, {**SNAKE, "id": ["c2"]}, {**SNAKE, "id": True}]
    for offset, line in enumerate(lines):
        parser.handle_line(offset, orjson.dumps(line), batch)
    assert sorted(batch.tool_calls) == ["42"]
    assert [r.reason for r in batch.rejects] == [
        "the call id must be text, got ['c2']",
        "the call id must be text, got True",
    ]


def test_a_byte_order_mark_does_not_cost_the_first_call(tmp_path):
    """Windows tools (PowerShell 5's `Out-File -Encoding utf8`) start a file with one, which
    orjson refuses; only a file's first line can hold it."""
    parser, batch = McpToolCallParser(tmp_path / "calls.jsonl"), Batch()
    first = b"\xef\xbb\xbf" + orjson.dumps(SNAKE)
    later = b"\xef\xbb\xbf" + orjson.dumps({**SNAKE, "id": "c2"})
    parser.handle_line(0, first, batch)
    parser.handle_line(len(first) + 1, later, batch)
    assert sorted(batch.tool_calls) == ["c1"]
    assert [r.reason for r in batch.rejects] == [
        "invalid JSON: UTF-8 byte order mark (BOM) is not supported: line 1 column 1 (char 0)"
    ]
