"""Codex rollouts → records: cumulative totals, doubled events, subagent replays."""

from __future__ import annotations

from pathlib import Path

import orjson

from ingestion.adapters.codex import CodexRolloutParser, session_trees
from ingestion.batch import Batch
from ingestion.lines import LineReader
from tests.builders import codex_line, token_count, write_jsonl

SESSION = "11111111-2222-4333-8444-555555555555"


def meta(at: str, session: str = SESSION, parent: str | None = None) -> dict:
    source: object = "cli"
    if parent:
        source = {"subagent": {"thread_spawn": {"parent_thread_id": parent, "depth": 1}}}
    return codex_line(
        at,
        "session_meta",
        {
            "id": session,
            "timestamp": at,
            "cwd": "/home/dev/src/tools",
            "cli_version": "0.59.0",
            "source": source,
            "model_provider": "openai",
            "git": {"branch": "main"},
        },
    )


def turn(at: str, model: str) -> dict:
    return codex_line(at, "turn_context", {"cwd": "/home/dev/src/tools", "model": model})


def parse(path: Path, start: int = 0, state: dict | None = None) -> tuple[Batch, dict, int]:
    batch = Batch()
    parser = CodexRolloutParser(path, state)
    with open(path, "rb") as handle:
        reader = LineReader(handle, start, 1 << 26)
        for offset, line in reader:
            parser.handle_line(offset, line, batch)
    return batch, parser.state(), reader.end_offset


def rollout_path(tmp_path: Path, session: str = SESSION) -> Path:
    return tmp_path / "2026" / "10" / "03" / f"rollout-2026-10-03T04-00-00-{session}.jsonl"


def test_doubled_events_and_rate_limit_events_add_nothing(tmp_path):
    path = write_jsonl(
        rollout_path(tmp_path),
        [
            meta("2026-10-03T10:00:00.000Z"),
            turn("2026-10-03T10:00:01.000Z", "gpt-5-codex"),
            token_count("2026-10-03T10:00:05.000Z", (1000, 800, 300, 100), (1000, 800, 300, 100)),
            token_count("2026-10-03T10:00:05.200Z", (1000, 800, 300, 100), (1000, 800, 300, 100)),
            codex_line(
                "2026-10-03T10:00:06.000Z",
                "event_msg",
                {"type": "token_count", "info": None, "rate_limits": {}},
            ),
            turn("2026-10-03T10:01:00.000Z", "gpt-5.1-codex-max"),
            token_count("2026-10-03T10:01:05.000Z", (3000, 2000, 700, 150), (2000, 1200, 400, 50)),
            token_count("2026-10-03T10:01:05.300Z", (3000, 2000, 700, 150), (2000, 1200, 400, 50)),
        ],
    )
    batch, _, _ = parse(path)
    records = sorted(batch.usage.values(), key=lambda r: r.occurred_at)
    assert [
        (r.model, r.input_tokens, r.cache_read_tokens, r.output_tokens, r.reasoning_tokens)
        for r in records
    ] == [
        ("gpt-5-codex", 200, 800, 300, 100),
        ("gpt-5.1-codex-max", 800, 1200, 400, 50),
    ]
    assert batch.sessions[SESSION].project_path == "/home/dev/src/tools"
    assert batch.sessions[SESSION].client_version == "0.59.0"


def test_incremental_reads_carry_the_cumulative_state(tmp_path):
    path = rollout_path(tmp_path)
    write_jsonl(
        path,
        [
            meta("2026-10-03T10:00:00.000Z"),
            turn("2026-10-03T10:00:01.000Z", "gpt-5-codex"),
            token_count("2026-10-03T10:00:05.000Z", (1000, 800, 300, 100), (1000, 800, 300, 100)),
        ],
    )
    first, state, offset = parse(path)
    write_jsonl(
        path,
        [
            token_count("2026-10-03T10:00:05.200Z", (1000, 800, 300, 100), (1000, 800, 300, 100)),
            token_count("2026-10-03T10:02:00.000Z", (1500, 900, 400, 100), (500, 100, 100, 0)),
        ],
        mode="ab",
    )
    second, _, _ = parse(path, offset, state)
    (record,) = second.usage.values()
    assert (record.input_tokens, record.cache_read_tokens, record.output_tokens) == (400, 100, 100)
    assert record.model == "gpt-5-codex"
    assert not set(first.usage) & set(second.usage)


def test_a_counter_reset_starts_a_new_segment(tmp_path):
    path = write_jsonl(
        rollout_path(tmp_path),
        [
            meta("2026-10-03T10:00:00.000Z"),
            turn("2026-10-03T10:00:01.000Z", "gpt-5-codex"),
            token_count("2026-10-03T10:00:05.000Z", (1000, 0, 300, 0), (1000, 0, 300, 0)),
            token_count("2026-10-03T11:00:05.000Z", (400, 0, 100, 0), (400, 0, 100, 0)),
        ],
    )
    batch, state, _ = parse(path)
    assert sorted(r.input_tokens for r in batch.usage.values()) == [400, 1000]
    assert state["segment"] == 1


def test_subagent_rollout_skips_the_replayed_parent_history(tmp_path):
    child = "99999999-2222-4333-8444-555555555555"
    replay_at = "2026-10-03T10:05:00.000Z"
    path = write_jsonl(
        rollout_path(tmp_path, child),
        [
            meta(replay_at, child, parent=SESSION),
            token_count(replay_at, (1000, 800, 300, 100), (1000, 800, 300, 100)),
            token_count(replay_at, (3000, 2000, 700, 150), (2000, 1200, 400, 50)),
            turn("2026-10-03T10:05:01.000Z", "gpt-5-codex"),
            token_count("2026-10-03T10:05:09.000Z", (3500, 2100, 800, 150), (500, 100, 100, 0)),
        ],
    )
    batch, _, _ = parse(path)
    (record,) = batch.usage.values()
    assert (record.input_tokens, record.cache_read_tokens, record.output_tokens) == (400, 100, 100)
    session = batch.sessions[child]
    assert session.parent_key == SESSION and session.is_subagent


def test_tool_calls_from_function_and_custom_calls(tmp_path):
    args = orjson.dumps({"command": ["bash", "-lc", "git commit -am 'x #3'"]}).decode()
    path = write_jsonl(
        rollout_path(tmp_path),
        [
            meta("2026-10-03T10:00:00.000Z"),
            codex_line(
                "2026-10-03T10:00:01.000Z",
                "response_item",
                {"type": "function_call", "name": "shell", "call_id": "c1", "arguments": args},
            ),
            codex_line(
                "2026-10-03T10:00:03.000Z",
                "response_item",
                {
                    "type": "function_call_output",
                    "call_id": "c1",
                    "output": orjson.dumps(
                        {"output": "[main abc1234] x #3", "metadata": {"exit_code": 0}}
                    ).decode(),
                },
            ),
            codex_line(
                "2026-10-03T10:00:04.000Z",
                "response_item",
                {
                    "type": "custom_tool_call",
                    "call_id": "c2",
                    "name": "apply_patch",
                    "input": "*** Begin Patch\n*** Update File: src/a.py\n*** Add File: b.py\n",
                },
            ),
            codex_line(
                "2026-10-03T10:00:05.000Z",
                "response_item",
                {
                    "type": "custom_tool_call_output",
                    "call_id": "c2",
                    "output": orjson.dumps(
                        {"output": "failed", "metadata": {"exit_code": 1}}
                    ).decode(),
                },
            ),
        ],
    )
    calls = parse(path)[0].tool_calls
    assert calls["c1"].commit_hashes == ["abc1234"] and calls["c1"].success is True
    assert (calls["c1"].ended_at - calls["c1"].started_at).total_seconds() == 2
    assert calls["c2"].file_paths == ["b.py", "src/a.py"] and calls["c2"].success is False


def test_malformed_rollout_lines_are_rejected(tmp_path):
    path = write_jsonl(
        rollout_path(tmp_path),
        [
            meta("2026-10-03T10:00:00.000Z"),
            b'{"timestamp":"2026-10-03T10:00:01Z","type":"event_msg","payload":{"type":"tok',
            # lines naming nothing tally reads are only shape-checked; this one claims a count
            {
                "timestamp": "2026-10-03T10:00:02.000Z",
                "type": "event_msg",
                "payload": "token_count",
            },
            codex_line("2026-10-03T10:00:02.500Z", "event_msg", None),  # handled: nothing to read
            codex_line(
                "2026-10-03T10:00:03.000Z",
                "event_msg",
                {"type": "token_count", "info": {"total_token_usage": {"input_tokens": -1}}},
            ),
            token_count("2026-10-03T10:00:05.000Z", (10, 0, 5, 0), (10, 0, 5, 0)),
        ],
    )
    batch, _, _ = parse(path)
    assert len(batch.usage) == 1
    reasons = [r.reason for r in batch.rejects]
    assert len(reasons) == 3
    assert reasons[0].startswith("invalid JSON")
    assert "event_msg line without a payload object" in reasons
    assert any("input_tokens must be a non-negative integer, got -1" in r for r in reasons)


def test_a_spawn_tree_is_known_by_its_root_thread_before_any_line_is_parsed(tmp_path):
    """Ingestion loads one session tree in one lane; a tree is the root rollout and every
    level of subagent rollouts it spawned, whatever order the files are listed in."""
    child = "99999999-2222-4333-8444-555555555555"
    grandchild = "88888888-2222-4333-8444-555555555555"
    other = "77777777-2222-4333-8444-555555555555"
    at = "2026-10-03T10:05:00.000Z"
    files = {
        grandchild: write_jsonl(rollout_path(tmp_path, grandchild), [meta(at, grandchild, child)]),
        child: write_jsonl(rollout_path(tmp_path, child), [meta(at, child, parent=SESSION)]),
        SESSION: write_jsonl(rollout_path(tmp_path, SESSION), [meta(at)]),
        other: write_jsonl(rollout_path(tmp_path, other), [meta(at, other)]),
    }
    unreadable = rollout_path(tmp_path, "66666666-2222-4333-8444-555555555555")
    assert session_trees([*files.values(), unreadable]) == [
        SESSION, SESSION, SESSION, other, "66666666-2222-4333-8444-555555555555",
    ]  # fmt: skip
    # a spawn loop (corrupt: two rollouts naming each other) ends, within the loop
    loop = write_jsonl(rollout_path(tmp_path / "loop", SESSION), [meta(at, SESSION, child)])
    assert set(session_trees([loop, files[child]])) <= {SESSION, child}


def test_a_review_subagent_rollout_is_read_like_any_other(tmp_path):
    """`/review` and compaction runs name their source as a plain string
    (`{"subagent": "review"}`): no parent to link, and nothing to stumble on."""
    review = meta("2026-10-03T10:00:00.000Z")
    review["payload"]["source"] = {"subagent": "review"}
    path = write_jsonl(
        rollout_path(tmp_path),
        [
            review,
            turn("2026-10-03T10:00:01.000Z", "gpt-5-codex"),
            token_count("2026-10-03T10:00:05.000Z", (1000, 800, 300, 100), (1000, 800, 300, 100)),
        ],
    )
    batch, _, _ = parse(path)
    assert not batch.rejects
    assert len(batch.usage) == 1
    (session,) = batch.sessions.values()
    assert session.parent_key is None and not session.is_subagent


def test_values_of_the_wrong_type_reject_their_line_and_the_rest_loads(tmp_path):
    listed_type = codex_line("2026-10-03T10:00:02.000Z", "response_item", {"call_id": "c1"})
    listed_type["type"] = ["response_item"]
    path = write_jsonl(
        rollout_path(tmp_path),
        [
            meta("2026-10-03T10:00:00.000Z"),
            turn("2026-10-03T10:00:01.000Z", "gpt-5-codex"),
            listed_type,
            codex_line("2026-10-03T10:00:03.000Z", "response_item",
                       {"type": {"function_call": True}, "call_id": "c2", "name": "shell"}),
            codex_line("2026-10-03T10:00:03.500Z", "response_item",
                       {"type": "function_call", "call_id": 5, "name": "shell"}),
            codex_line("2026-10-03T10:00:03.600Z", "response_item",
                       {"type": "function_call", "call_id": "c3", "name": ["shell"]}),
            codex_line("2026-10-03T10:00:04.000Z", "response_item",
                       {"type": "function_call", "call_id": "c4", "name": "shell",
                        "arguments": "{}"}),
            token_count("2026-10-03T10:00:05.000Z", (10, 0, 5, 0), (10, 0, 5, 0)),
        ],
    )  # fmt: skip
    batch, _, _ = parse(path)
    assert len(batch.usage) == 1 and sorted(batch.tool_calls) == ["c4"]
    reasons = [r.reason for r in batch.rejects]
    assert reasons == [
        "type must be text, got ['response_item']",
        "response_item payload.type must be text, got {'function_call': True}",
        "call_id must be text, got 5",
        "name must be text, got ['shell']",
    ]


def test_a_session_meta_with_a_bad_id_keeps_its_session_and_says_why(tmp_path):
    """An id or a parent that is not text is refused with the reason, and costs no more than
    itself: the session keeps the id its file name gives, its place and its version."""
    bad = meta("2026-10-03T10:00:00.000Z", parent="p")
    bad["payload"]["id"] = 12345
    bad["payload"]["source"]["subagent"]["thread_spawn"]["parent_thread_id"] = {"x": 1}
    path = write_jsonl(
        rollout_path(tmp_path),
        [bad, turn("2026-10-03T10:00:01.000Z", "gpt-5-codex"),
         token_count("2026-10-03T10:00:05.000Z", (10, 0, 5, 0), (10, 0, 5, 0))],
    )  # fmt: skip
    batch, _, _ = parse(path)
    assert [r.reason for r in batch.rejects] == [
        "session_meta.id must be text, got 12345; the session keeps the id its file name gives",
        "parent_thread_id must be text, got {'x': 1}; the session is kept without its parent",
    ]
    (session,) = batch.sessions.values()
    assert session.session_key == SESSION and session.parent_key is None
    assert (session.project_path, session.client_version) == ("/home/dev/src/tools", "0.59.0")
    assert len(batch.usage) == 1


def test_codex_exec_json_output_is_refused_with_the_reason(tmp_path):
    """`codex exec --json` prints thread/turn/item events; its usage has no time or model.
    A directory of captured exec output loaded nothing and said nothing: each usage line is
    now a reject that says why and where the same usage is read, and the rest is ignored."""
    path = write_jsonl(tmp_path / "exec.jsonl", [
        {"type": "thread.started", "thread_id": "0199a213-81c0-7800-8aa1-bbab2a035a53"},
        {"type": "turn.started"},
        {"type": "item.completed", "item": {"id": "item_1", "type": "agent_message",
                                            "text": "Done."}},
        {"type": "turn.completed", "usage": {"input_tokens": 24763, "cached_input_tokens": 24448,
                                             "output_tokens": 122}},
        {"type": "turn.failed", "error": {"message": "stream disconnected"}},
    ])  # fmt: skip
    batch, _, _ = parse(path)
    assert not batch.usage
    assert [(r.position, r.reason) for r in batch.rejects] == [
        (str(path.read_bytes().index(b'{"type":"turn.completed"')),
         "`codex exec --json` output: its usage has no timestamp or model, so it cannot be "
         "priced; tally reads the rollout Codex writes for the same run under "
         "$CODEX_HOME/sessions")
    ]  # fmt: skip


def test_a_claude_transcript_read_as_a_rollout_is_one_reject_and_no_session(tmp_path):
    """The mistake the other way round: a session made of a transcript's times, nothing
    loaded, no word."""
    from tests.builders import assistant, usage, user_text

    path = write_jsonl(rollout_path(tmp_path), [
        user_text("2026-10-03T10:00:00.000Z"),
        assistant("m1", "r1", "2026-10-03T10:00:01.000Z", usage()),
        user_text("2026-10-03T10:00:02.000Z"),
    ])  # fmt: skip
    batch, _, _ = parse(path)
    assert not batch.usage and not batch.sessions
    assert [r.reason for r in batch.rejects] == [
        "a Claude Code transcript line, which this source does not read (`tally ingest "
        "claude-code` reads it): the file's other lines of that kind are passed over"
    ]
