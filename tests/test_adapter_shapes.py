"""Any value of any JSON type, anywhere in a real-shaped line, costs at most that line: the
adapters reject it with a reason (or read around it), and never raise. Hypothesis replaces
one value of a Claude Code, Codex or MCP tool-call line (or drops its key) and parses the
line after a good copy of the same record, as a log holds them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.adapters.claude_code import ClaudeTranscriptParser, FileContext
from ingestion.adapters.codex import CodexRolloutParser
from ingestion.adapters.mcp_tool_calls import McpToolCallParser
from ingestion.batch import Batch
from tests.builders import assistant, codex_line, token_count, tool_result, usage, user_text

T0 = "2026-10-03T10:00:00.000Z"
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)

TOOL_USE = {
    "type": "tool_use",
    "id": "toolu_1",
    "name": "Bash",
    "input": {"command": "git commit -m 'Fix #12'", "file_path": "/src/a.py"},
}
CLAUDE_LINES: list[dict[str, Any]] = [
    assistant("m1", "r1", T0, usage(write_5m=30, write_1h=40), content=[TOOL_USE], costUSD=0.01),
    tool_result("toolu_1", T0, "[main 1a2b3c4] Fix #12", is_error=False),
    user_text(T0),
    {
        "type": "progress",
        "sessionId": "s1",
        "timestamp": T0,
        "toolUseID": "x",
        "parentToolUseID": "toolu_task",
        "data": {
            "type": "agent_progress",
            "agentId": "abc",
            "message": assistant("m2", "r2", T0, usage(), sidechain=True),
        },
    },
]
CODEX_LINES: list[dict[str, Any]] = [
    codex_line(
        T0,
        "session_meta",
        {
            "id": "11111111-2222-4333-8444-555555555555",
            "timestamp": T0,
            "cwd": "/src",
            "source": {"subagent": {"thread_spawn": {"parent_thread_id": "p", "depth": 1}}},
            "model_provider": "openai",
        },
    ),
    codex_line(T0, "turn_context", {"cwd": "/src", "model": "gpt-5-codex"}),
    token_count(T0, (1000, 800, 300, 100), (1000, 800, 300, 100)),
    codex_line(
        T0,
        "response_item",
        {
            "type": "function_call",
            "name": "shell",
            "call_id": "c1",
            "arguments": '{"command":["git","commit"]}',
        },
    ),
    codex_line(
        T0,
        "response_item",
        {
            "type": "function_call_output",
            "call_id": "c1",
            "output": '{"output":"ok","metadata":{"exit_code":0}}',
        },
    ),
]

MCP_LINES: list[dict[str, Any]] = [
    {"id": "c1", "tool": "getBoard", "server": "pigeon", "session": "mcp-1",
     "started_at": T0, "duration_ms": 250, "success": True, "response_chars": 4000},
    {"toolName": "mcp__github__get_pr", "sessionId": "mcp-1", "createdAt": T0,
     "durationMs": 40, "success": False, "errorMessage": "rate limited", "responseTokens": 12},
]  # fmt: skip


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON tree: dict keys and list indexes."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, lines: list[dict[str, Any]]) -> tuple[dict[str, Any], bytes]:
    original = draw(st.sampled_from(lines))
    line = copy.deepcopy(original)
    path = draw(st.sampled_from(_paths(line)))
    parent = line
    for step in path[:-1]:
        parent = parent[step]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(JSON_VALUES)
    return original, orjson.dumps(line)


def _parse_after_a_good_copy(parser: Any, original: dict[str, Any], line: bytes) -> Batch:
    batch = Batch()
    assert parser.handle_line(0, orjson.dumps(original), batch) >= 0
    assert parser.handle_line(1, line, batch) >= 0
    assert all(reject.reason for reject in batch.rejects)
    return batch


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated(CLAUDE_LINES))
def test_claude_code_lines_of_any_shape(case: tuple[dict[str, Any], bytes]) -> None:
    root = Path("/logs/projects")
    parser = ClaudeTranscriptParser(FileContext(root / "p" / "s1.jsonl", root))
    _parse_after_a_good_copy(parser, *case)


@pytest.fixture(scope="module")
def rollout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The parser looks at its file first (a subagent rollout's replayed head)."""
    path = tmp_path_factory.mktemp("sessions") / "rollout-2026-10-03T04-00-00-1111.jsonl"
    path.write_bytes(orjson.dumps(CODEX_LINES[0]) + b"\n")
    return path


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated(CODEX_LINES))
def test_codex_lines_of_any_shape(rollout: Path, case: tuple[dict[str, Any], bytes]) -> None:
    _parse_after_a_good_copy(CodexRolloutParser(rollout, None), *case)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated(MCP_LINES))
def test_mcp_tool_call_lines_of_any_shape(case: tuple[dict[str, Any], bytes]) -> None:
    _parse_after_a_good_copy(McpToolCallParser(Path("/logs/mcp/calls.jsonl")), *case)
