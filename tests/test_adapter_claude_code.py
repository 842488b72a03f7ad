"""Claude Code transcripts → records: the pure parsing rules, no database."""

from __future__ import annotations

from pathlib import Path

import orjson

from ingestion.adapters.claude_code import ClaudeTranscriptParser, FileContext
from ingestion.batch import Batch
from ingestion.lines import LineReader
from tests.builders import assistant, tool_result, usage, user_text, write_jsonl

T0 = "2026-10-03T10:00:00.000Z"
T1 = "2026-10-03T10:00:01.000Z"
T2 = "2026-10-03T10:00:02.500Z"


def parse(root: Path, *paths: Path) -> Batch:
    batch = Batch()
    for path in paths:
        parser = ClaudeTranscriptParser(FileContext(path, root))
        with open(path, "rb") as handle:
            for offset, line in LineReader(handle, 0, 1 << 26):
                parser.handle_line(offset, line, batch)
    batch.drop_sidechain_replays()
    return batch


def test_repeated_usage_lines_keep_the_final_output_and_earliest_time(tmp_path):
    # one response, three content blocks: usage repeated, output a placeholder until the end
    path = write_jsonl(
        tmp_path / "p" / "s1.jsonl",
        [
            assistant(
                "msg_1",
                "req_1",
                T1,
                usage(output=1, write_1h=500),
                content=[{"type": "thinking", "thinking": "hm"}],
            ),
            assistant("msg_1", "req_1", T0, usage(output=1, write_1h=500)),
            assistant("msg_1", "req_1", T2, usage(output=742, write_1h=500)),
        ],
    )
    batch = parse(tmp_path, path)
    assert len(batch.usage) == 1
    record = batch.usage[("msg_1", "req_1")]
    assert record.output_tokens == 742
    assert record.input_tokens == 10 and record.cache_read_tokens == 1000
    assert record.cache_write_1h_tokens == 500 and record.cache_write_5m_tokens == 0
    assert record.occurred_at.isoformat() == "2026-10-03T10:00:00+00:00"
    assert batch.merged_in_batch == 2


def test_cache_writes_without_a_split_count_as_5m(tmp_path):
    body = usage(write_5m=300, split=False)
    path = write_jsonl(tmp_path / "p" / "s1.jsonl", [assistant("m", "r", T0, body)])
    record = parse(tmp_path, path).usage[("m", "r")]
    assert (record.cache_write_5m_tokens, record.cache_write_1h_tokens) == (300, 0)


def test_synthetic_lines_are_dropped_and_reported_cost_is_kept(tmp_path):
    path = write_jsonl(
        tmp_path / "p" / "s1.jsonl",
        [
            assistant("e1", None, T0, usage(output=0), model="<synthetic>"),
            assistant("m", "r", T1, usage(), costUSD=0.0123),
        ],
    )
    batch = parse(tmp_path, path)
    assert list(batch.usage) == [("m", "r")]
    assert batch.usage[("m", "r")].reported_cost_usd == "0.0123"


def test_a_reported_cost_written_as_text_is_kept_exactly(tmp_path):
    """Tools that keep decimals exact write them as text; text that is no number is no cost
    (the request's usage loads either way), and a negative one is refused as a number is."""
    path = write_jsonl(
        tmp_path / "p" / "s1.jsonl",
        [assistant("m1", "r1", T1, usage(), costUSD="0.000012345678901"),
         assistant("m2", "r2", T1, usage(), costUSD="about a cent"),
         assistant("m3", "r3", T1, usage(), costUSD="NaN"),
         assistant("m4", "r4", T1, usage(), costUSD="-1")],
    )  # fmt: skip
    batch = parse(tmp_path, path)
    costs = {key[0]: record.reported_cost_usd for key, record in batch.usage.items()}
    assert costs == {"m1": "0.000012345678901", "m2": None, "m3": None}
    assert [r.reason for r in batch.rejects] == ["costUSD must not be negative, got -1"]


def test_subagent_file_and_agent_progress_copies_count_once(tmp_path):
    nested = assistant(
        "msg_sub", "req_sub", T1, usage(output=1), session="s1", sidechain=True, agentId="abc123"
    )
    parent = write_jsonl(
        tmp_path / "proj" / "s1.jsonl",
        [
            user_text(T0),
            {
                "type": "progress",
                "sessionId": "s1",
                "timestamp": T1,
                "toolUseID": "x",
                "parentToolUseID": "toolu_task",
                "data": {"type": "agent_progress", "agentId": "abc123", "message": nested},
            },
        ],
    )
    sub = write_jsonl(
        tmp_path / "proj" / "s1" / "subagents" / "agent-abc123.jsonl",
        [
            assistant("msg_sub", "req_sub", T1, usage(output=1), sidechain=True, agentId="abc123"),
            assistant("msg_sub", "req_sub", T2, usage(output=90), sidechain=True, agentId="abc123"),
        ],
    )
    batch = parse(tmp_path, parent, sub)
    assert len(batch.usage) == 1
    record = batch.usage[("msg_sub", "req_sub")]
    assert record.output_tokens == 90 and record.origin == "subagent_file"
    assert record.session_key == "s1:agent-abc123"
    session = batch.sessions["s1:agent-abc123"]
    assert session.parent_key == "s1" and session.is_subagent
    # one project's directory read, or the subagents directory itself: the same sessions
    for root in (tmp_path / "proj", sub.parent):
        again = parse(root, sub)
        assert set(again.sessions) == {"s1:agent-abc123"}
        assert again.sessions["s1:agent-abc123"].parent_key == "s1"


def test_btw_sidechain_replay_of_a_main_message_is_dropped(tmp_path):
    path = write_jsonl(
        tmp_path / "p" / "s1.jsonl",
        [
            assistant("msg_1", "req_main", T0, usage(output=50)),
            assistant("msg_1", "req_btw", T1, usage(output=50), sidechain=True),
            assistant("msg_2", "req_side", T2, usage(output=7), sidechain=True),  # a real sidechain
        ],
    )
    batch = parse(tmp_path, path)
    assert set(batch.usage) == {("msg_1", "req_main"), ("msg_2", "req_side")}


def test_tool_calls_pair_use_and_result(tmp_path):
    content = [
        {
            "type": "tool_use",
            "id": "toolu_edit",
            "name": "Edit",
            "input": {"file_path": "/src/a.py", "old_string": "a", "new_string": "b"},
        },
        {
            "type": "tool_use",
            "id": "toolu_git",
            "name": "Bash",
            "input": {"command": "git commit -am 'fix #12'"},
        },
        {"type": "tool_use", "id": "toolu_mcp", "name": "mcp__pigeon__getBoard", "input": {}},
    ]
    path = write_jsonl(
        tmp_path / "p" / "s1.jsonl",
        [
            assistant("m", "r", T0, usage(), content=content),
            tool_result("toolu_edit", T1, "ok"),
            tool_result(
                "toolu_git",
                T1,
                "[main 1a2b3c4] fix #12\n 1 file changed",
                structured={"stdout": "...", "stderr": ""},
            ),
            tool_result("toolu_mcp", T2, "boom " * 30, is_error=True),
        ],
    )
    calls = parse(tmp_path, path).tool_calls
    assert calls["toolu_edit"].file_paths == ["/src/a.py"]
    assert calls["toolu_edit"].tool_name == "Edit" and calls["toolu_edit"].success is True
    assert calls["toolu_git"].commit_hashes == ["1a2b3c4"]
    mcp = calls["toolu_mcp"]
    assert mcp.mcp_server == "pigeon" and mcp.success is False
    assert mcp.result_chars == 150 and mcp.result_tokens_estimate == 38
    assert mcp.error_message.startswith("boom")
    assert (mcp.ended_at - mcp.started_at).total_seconds() == 2.5


def test_tool_calls_remember_the_issues_their_arguments_name(tmp_path):
    content = [
        {"type": "tool_use", "id": "toolu_move", "name": "mcp__pigeon__moveCard",
         "input": {"cardNumber": 12, "column": "Done"}},
        {"type": "tool_use", "id": "toolu_update", "name": "mcp__paperclip__update_issue",
         "input": {"issue_id": "PAP-7", "status": "in_progress", "issueIds": ["#3", "9"]}},
        {"type": "tool_use", "id": "toolu_read", "name": "Read",
         "input": {"file_path": "/src/PAP-7.md", "limit": 12}},
    ]  # fmt: skip
    path = write_jsonl(tmp_path / "p" / "s1.jsonl", [assistant("m", "r", T0, usage(),
                                                              content=content)])  # fmt: skip
    calls = parse(tmp_path, path).tool_calls
    assert calls["toolu_move"].issue_refs == ["#12"]
    assert calls["toolu_update"].issue_refs == ["#3", "#9", "PAP-7"]
    assert calls["toolu_read"].issue_refs == []  # a path that mentions an issue is not a touch


def test_task_result_summary_is_not_counted_as_usage(tmp_path):
    path = write_jsonl(
        tmp_path / "p" / "s1.jsonl",
        [
            assistant(
                "m",
                "r",
                T0,
                usage(),
                content=[{"type": "tool_use", "id": "toolu_task", "name": "Task", "input": {}}],
            ),
            tool_result(
                "toolu_task",
                T1,
                "done",
                structured={
                    "totalTokens": 99999,
                    "usage": {"input_tokens": 5, "output_tokens": 9999},
                },
            ),
        ],
    )
    assert list(parse(tmp_path, path).usage) == [("m", "r")]


def test_session_metadata_and_nested_layout(tmp_path):
    path = write_jsonl(
        tmp_path / "project-alpha" / "session-1" / "chat.jsonl",
        [
            user_text(T1),
            assistant("m", "r", T2, usage()),
        ],
    )
    session = parse(tmp_path, path).sessions["session-1"]
    assert session.project_path == "/home/dev/src/app"
    assert (session.git_branch, session.client_version) == ("main", "2.1.14")
    assert session.first_at.isoformat().startswith("2026-10-03T10:00:01")


def test_bad_lines_are_rejected_with_reasons_and_good_ones_kept(tmp_path):
    good = assistant("m", "r", T0, usage())
    negative = assistant("m2", "r2", T0, usage(output=-5))
    wrong_type = assistant("m3", "r3", T0, usage(input_tokens="many"))
    no_time = assistant("m4", "r4", "yesterday", usage())
    numbered_model = assistant("m5", "r5", T0, usage())
    numbered_model["message"]["model"] = 4
    path = write_jsonl(
        tmp_path / "p" / "s1.jsonl",
        [
            b'{"type":"assistant","message":{"id":"x"',
            b"not json at all",
            b"[1,2,3]",
            b"\x00\xff\xfe garbage",
            negative,
            wrong_type,
            no_time,
            numbered_model,
            good,
            b"",
        ],
    )
    batch = parse(tmp_path, path)
    assert list(batch.usage) == [("m", "r")]
    reasons = [r.reason for r in batch.rejects]
    assert len(reasons) == 8
    assert "message.model must be text, got 4" in reasons
    assert reasons[0].startswith("invalid JSON")
    assert "not a JSON object (a list)" in reasons
    assert any("output_tokens must be a non-negative integer, got -5" in r for r in reasons)
    assert any("input_tokens must be a non-negative integer" in r for r in reasons)
    assert any("timestamp is missing or not a timestamp" in r for r in reasons)


def test_lines_without_ids_are_keyed_by_content(tmp_path):
    legacy = {
        "timestamp": T0,
        "sessionId": "s1",
        "costUSD": 0.5,
        "message": {"model": "claude-3-7-sonnet-20250219", "usage": usage()},
    }
    path = write_jsonl(tmp_path / "p" / "s1.jsonl", [legacy, legacy])
    batch = parse(tmp_path, path)
    assert len(batch.usage) == 1
    (key,) = batch.usage
    assert key[0].startswith("line:")


def test_ids_of_the_wrong_type_reject_their_line_and_the_rest_loads(tmp_path):
    """Even after a good copy of a response (the shortcut for repeated usage lines looks the
    ids up first): a list or an object is not an id."""
    listed_id = assistant("m", "r", T0, usage())
    listed_id["message"]["id"] = ["m"]
    keyed_request = assistant("m", "r", T0, usage())
    keyed_request["requestId"] = {"id": "r"}
    path = write_jsonl(
        tmp_path / "p" / "s1.jsonl",
        [assistant("m", "r", T0, usage()), listed_id, keyed_request,
         assistant("m2", "r2", T0, usage())],
    )  # fmt: skip
    batch = parse(tmp_path, path)
    assert sorted(batch.usage) == [("m", "r"), ("m2", "r2")]
    assert [r.reason for r in batch.rejects] == [
        "message.id must be text, got ['m']",
        "requestId must be text, got {'id': 'r'}",
    ]


def test_a_tool_block_with_a_bad_id_is_rejected_alone_and_its_line_kept(tmp_path):
    """A number, an object or nothing where a tool call's id belongs refuses that block, with
    the reason; the response's usage and the line's other blocks still load."""
    content = [
        {"type": "tool_use", "id": "toolu_good", "name": "Read", "input": {}},
        {"type": "tool_use", "id": 7, "name": "Read", "input": {}},
        {"type": "tool_use", "name": "Grep", "input": {}},
    ]
    result = tool_result("toolu_good", T1, "ok")
    result["message"]["content"].insert(
        0, {"type": "tool_result", "tool_use_id": {"id": "x"}, "content": "?"}
    )
    path = write_jsonl(
        tmp_path / "p" / "s1.jsonl", [assistant("m", "r", T0, usage(), content=content), result]
    )
    batch = parse(tmp_path, path)
    second_line = str(path.read_bytes().index(b"\n") + 1)  # positions are byte offsets
    assert sorted(batch.usage) == [("m", "r")]
    assert sorted(batch.tool_calls) == ["toolu_good"]
    assert batch.tool_calls["toolu_good"].ended_at is not None
    assert [(r.position, r.reason) for r in batch.rejects] == [
        ("0", "content[1] (tool_use) refused, the rest of the line kept: "
              "tool_use.id must be text, got 7"),
        ("0", "content[2] (tool_use) refused, the rest of the line kept: tool_use without an id"),
        (second_line, "content[0] (tool_result) refused, the rest of the line kept: "
              "tool_result.tool_use_id must be text, got {'id': 'x'}"),
    ]  # fmt: skip
    assert b'"id":7' in batch.rejects[0].excerpt


def test_a_lone_half_of_a_surrogate_pair_does_not_cost_its_line(tmp_path):
    """JSON.stringify writes an emoji cut in two by a truncated string as a lone escape
    (`\\ud83d`), which orjson refuses: the line loads, the lone half read as U+FFFD; an
    escaped backslash before `ud83d` is text and stays as it is."""

    def cut(line: dict, text: str) -> bytes:
        return orjson.dumps(line).replace(text.encode(), b"\\ud83d")

    content = [{"type": "text", "text": "done CUT"},
               {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}]  # fmt: skip
    answer = assistant("m", "r", T0, usage(output=7), content=content)
    result = tool_result("toolu_1", T1, "output CUT")
    literal = assistant("m2", "r2", T2, usage(), content=[{"type": "text", "text": "a\\ud83d"}])
    path = write_jsonl(tmp_path / "p" / "s1.jsonl",
                       [cut(answer, "CUT"), cut(result, "CUT"), orjson.dumps(literal)])  # fmt: skip
    assert b"\\ud83d" in path.read_bytes()
    batch = parse(tmp_path, path)
    assert not batch.rejects
    assert batch.usage[("m", "r")].output_tokens == 7 and ("m2", "r2") in batch.usage
    call = batch.tool_calls["toolu_1"]
    assert call.ended_at is not None and call.result_chars == len("output \ufffd")


def test_a_codex_rollout_read_as_a_transcript_is_one_reject_and_no_session(tmp_path):
    """A Codex rollout in the Claude directory (a TALLY_CLAUDE_DIR set to ~/.codex/sessions)
    loaded nothing and made a session of its lines' times without a word."""
    from tests.builders import codex_line, token_count

    path = write_jsonl(tmp_path / "p" / "rollout.jsonl", [
        codex_line(T0, "session_meta", {"id": "abc", "cwd": "/src", "cli_version": "0.59.0"}),
        codex_line(T1, "turn_context", {"cwd": "/src", "model": "gpt-5-codex"}),
        codex_line(T1, "response_item", {"type": "message", "role": "user", "content": []}),
        token_count(T2, (1000, 800, 300, 100), (1000, 800, 300, 100)),
        codex_line(T2, "response_item", {"type": "function_call", "name": "shell",
                                         "arguments": "{\"usage\": 1}", "call_id": "c1"}),
    ])  # fmt: skip
    batch = parse(tmp_path, path)
    assert not batch.usage and not batch.sessions and not batch.tool_calls
    assert [r.reason for r in batch.rejects] == [
        "a Codex rollout line, which this source does not read (`tally ingest codex` reads "
        "it): the file's other lines of that kind are passed over"
    ]


def test_a_stray_line_of_another_shape_costs_only_itself(tmp_path):
    """The foreign-log check is per line: a transcript holding one line shaped like a Codex
    rollout's still loads its own lines."""
    from tests.builders import codex_line

    path = write_jsonl(tmp_path / "p" / "s1.jsonl", [
        user_text(T0),
        codex_line(T1, "session_meta", {"id": "abc"}),
        assistant("m1", "r1", T2, usage()),
    ])  # fmt: skip
    batch = parse(tmp_path, path)
    assert [u.message_id for u in batch.usage.values()] == ["m1"]
    assert len(batch.rejects) == 1 and list(batch.sessions) == ["s1"]
