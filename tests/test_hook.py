"""`tally hook claude-code`: Claude Code hook input into tool-call halves (pure), and the
command end to end against a real `tally serve`, merged with the same call read from the
transcript."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from ingestion.adapters.claude_code_hooks import StopRead, tool_call_half, transcripts_of
from ingestion.adapters.common import InvalidRecord
from ingestion.keys import create_key
from ingestion.sources import CLAUDE_CODE
from tests.api_helpers import TALLY, free_port, serving
from tests.builders import assistant, tool_result, usage, write_jsonl
from tests.ingest_helpers import ingest

NOW = datetime(2026, 11, 3, 9, 30, 5, tzinfo=UTC)
SESSION = "8c35adc1-4f2e-4f7a-9a51-2b7e0c1d9e10"


def hook_input(event: str, tool: str, tool_input: dict[str, Any], **extra: Any) -> dict:
    """What Claude Code writes on a hook's stdin (common fields, then the event's own)."""
    return {
        "session_id": SESSION,
        "transcript_path": f"/home/dev/.claude/projects/-home-dev-src-app/{SESSION}.jsonl",
        "cwd": "/home/dev/src/app",
        "permission_mode": "default",
        "hook_event_name": event,
        "tool_name": tool,
        "tool_input": tool_input,
        "tool_use_id": "toolu_01DUa8",
        **extra,
    }


# -- hook input into records ------------------------------------------------------------------


def test_a_start_is_the_calls_first_half_with_what_its_input_names():
    record = tool_call_half(
        hook_input("PreToolUse", "mcp__paperclip__update_issue", {"issueId": "PAP-12"}), NOW
    )
    assert record == {
        "source": "claude_code", "session_id": SESSION, "call_id": "toolu_01DUa8",
        "tool_name": "mcp__paperclip__update_issue", "mcp_server": "paperclip",
        "started_at": "2026-11-03T09:30:05+00:00", "file_paths": [], "issue_refs": ["PAP-12"],
        "parent_session_id": None,
    }  # fmt: skip


def test_an_end_carries_the_outcome_the_result_size_and_the_commit_it_printed():
    bash = hook_input(
        "PostToolUse", "Bash", {"command": "git commit -m 'Fix #7'"},
        tool_response={"stdout": "[main 3f2a9c1] Fix #7\n 1 file changed", "stderr": "",
                       "interrupted": False, "isImage": False},
    )  # fmt: skip
    record = tool_call_half(bash, NOW)
    assert record is not None
    assert (record["ended_at"], record["success"], record["result_chars"]) == (
        "2026-11-03T09:30:05+00:00", True, 37)  # fmt: skip
    assert (record["result_tokens_estimate"], record["commit_hashes"]) == (10, ["3f2a9c1"])

    edit = hook_input(
        "PostToolUse", "Edit", {"file_path": "/home/dev/src/app/a.py", "old_string": "x"},
        tool_response={"filePath": "/home/dev/src/app/a.py", "structuredPatch": []},
    )  # fmt: skip
    record = tool_call_half(edit, NOW)
    assert record is not None
    assert record["file_paths"] == ["/home/dev/src/app/a.py"]
    # a structured answer's size is not the result the model read: the transcript's counts
    assert "result_chars" not in record

    mcp = hook_input("PostToolUse", "mcp__pigeon__getBoard", {"cardId": 4},
                     tool_response=[{"type": "text", "text": "three cards"}])  # fmt: skip
    record = tool_call_half(mcp, NOW)
    assert record is not None and (record["result_chars"], record["issue_refs"]) == (11, ["#4"])


def test_a_failure_and_a_subagents_call_and_events_that_are_not_tool_calls():
    failed = tool_call_half(hook_input("PostToolUseFailure", "Bash", {"command": "make"},
                                       error="Exit code 2\n" + "x" * 900), NOW)  # fmt: skip
    assert failed is not None and failed["success"] is False
    assert failed["error_message"].startswith("Exit code 2") and len(failed["error_message"]) == 500

    inside = tool_call_half(hook_input("PreToolUse", "Read", {}, agent_id="a3f9e1"), NOW)
    assert inside is not None and inside["session_id"] == f"{SESSION}:agent-a3f9e1"
    assert inside["parent_session_id"] == SESSION

    assert tool_call_half({"session_id": SESSION, "hook_event_name": "Stop"}, NOW) is None
    for broken, reason in (
        ([1, 2], "not a JSON object"),
        ({**hook_input("PreToolUse", "Bash", {}), "tool_use_id": None}, "no tool_use_id"),
        ({**hook_input("PreToolUse", "Bash", {}), "tool_use_id": 7}, "must be text"),
        ({**hook_input("PreToolUse", "Bash", {}), "session_id": ""}, "no session_id"),
    ):
        with pytest.raises(InvalidRecord, match=reason):
            tool_call_half(broken, NOW)


# -- the command end to end -------------------------------------------------------------------


def run_hook(payload: Any, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return subprocess.run([str(TALLY), "hook", "claude-code"], input=body.decode(), env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_the_command_never_stands_in_the_agents_way(tally_env, tmp_path):
    env = {**os.environ, "TALLY_API_URL": f"http://127.0.0.1:{free_port()}",
           "TALLY_API_KEY": "tly_000000000000_" + "x" * 43}  # fmt: skip
    start = hook_input("PreToolUse", "Bash", {"command": "ls"})
    for payload, said in (
        (start, "cannot reach the API"),
        (b"{half", "the hook input is not JSON"),
        ({**start, "tool_use_id": None}, "PreToolUse input has no tool_use_id"),
    ):
        done = run_hook(payload, env)
        assert done.returncode == 0 and said in done.stderr, done.stderr
    no_transcript = run_hook({"session_id": SESSION, "hook_event_name": "Stop"}, env)
    assert no_transcript.returncode == 0
    assert "Stop input has no transcript_path" in no_transcript.stderr
    unset = run_hook(start, {k: v for k, v in env.items() if k != "TALLY_API_KEY"})
    assert unset.returncode == 0 and "set TALLY_API_KEY" in unset.stderr


@pytest.mark.slow
def test_hooked_halves_and_the_transcript_make_one_call(
    tally_env, db_url, conninfo, tmp_path
):  # fmt: skip
    with psycopg.connect(conninfo, autocommit=True) as conn:
        key = create_key(conn, "local", "agent", "eng").key
    with serving(db_url, tmp_path / "data") as url:
        env = {**os.environ, "TALLY_API_URL": url, "TALLY_API_KEY": key}
        command = {"command": "git commit -m 'Fix PAP-12'"}
        printed = "[main 3f2a9c1] Fix PAP-12\n 1 file changed, 2 insertions(+)"
        for payload in (
            hook_input("PreToolUse", "Bash", command),
            hook_input("PostToolUse", "Bash", command,
                       tool_response={"stdout": printed, "stderr": ""}),
        ):  # fmt: skip
            done = run_hook(payload, env)
            assert (done.returncode, done.stderr) == (0, "")
        wrong_key = run_hook(hook_input("PreToolUse", "Bash", command),
                             {**env, "TALLY_API_KEY": key[:-4] + "zzzz"})  # fmt: skip
        assert wrong_key.returncode == 0 and "the API answered 401" in wrong_key.stderr

    with psycopg.connect(conninfo) as conn:
        hooked = conn.execute(
            """SELECT s.session_key, t.tool_name, t.success, t.result_chars, t.commit_hashes,
                      t.duration_ms IS NOT NULL FROM tool_calls t
               JOIN agent_sessions s ON s.id = t.session_id"""
        ).fetchall()
    assert hooked == [(SESSION, "Bash", True, len(printed), ["3f2a9c1"], True)]

    # the same call, as the transcript records it, merges into the hooked row
    use = {"type": "tool_use", "id": "toolu_01DUa8", "name": "Bash", "input": command}
    write_jsonl(tmp_path / "projects" / "-home-dev-src-app" / f"{SESSION}.jsonl", [
        assistant("msg_1", "req_1", "2026-11-03T09:30:01.000Z", usage(), session=SESSION,
                  content=[use]),
        tool_result("toolu_01DUa8", "2026-11-03T09:30:03.000Z", printed, session=SESSION,
                    structured={"stdout": printed, "stderr": ""}),
    ])  # fmt: skip
    ingest(conninfo, CLAUDE_CODE, tmp_path / "projects")
    with psycopg.connect(conninfo) as conn:
        merged = conn.execute(
            """SELECT count(*), min(started_at)::text, min(ended_at)::text, min(duration_ms),
                      bool_and(success), min(message_id) FROM tool_calls"""
        ).fetchone()
    assert merged == (1, "2026-11-03 09:30:01+00", "2026-11-03 09:30:03+00", 2000, True, "msg_1")


# -- stops: the transcript's new requests ------------------------------------------------------


def session_files(projects: Path) -> tuple[Path, Path]:
    """A session as Claude Code 2.1 writes it: streamed copies of a request (the last the
    most complete), a `/btw` sidechain replay of one, a 5m/1h cache-write split, a tool call,
    and a subagent's own file."""
    main = projects / "-home-dev-src-app" / f"{SESSION}.jsonl"
    use = {"type": "tool_use", "id": "toolu_7", "name": "Edit",
           "input": {"file_path": "/home/dev/src/app/a.py", "issue": "PAP-3"}}  # fmt: skip
    write_jsonl(main, [
        assistant("msg_1", "req_1", "2026-11-03T09:00:00.000Z", usage(output=5),
                  session=SESSION),
        assistant("msg_1", "req_1", "2026-11-03T09:00:01.000Z", usage(output=300,
                  write_5m=1200, write_1h=800), session=SESSION, content=[use]),
        tool_result("toolu_7", "2026-11-03T09:00:02.000Z", "ok", session=SESSION),
        assistant("msg_1", "req_1", "2026-11-03T09:00:03.000Z", usage(output=300,
                  write_5m=1200, write_1h=800), session=SESSION, sidechain=True),
    ])  # fmt: skip
    subagent = main.with_suffix("") / "subagents" / "agent-a3f9e1.jsonl"
    write_jsonl(subagent, [
        assistant("msg_2", "req_2", "2026-11-03T09:00:05.000Z", usage(output=40),
                  session=SESSION, model="claude-haiku-4-5-20251001", sidechain=True),
    ])  # fmt: skip
    return main, subagent


def test_a_stop_reads_the_transcripts_new_complete_lines_by_the_parsers_rules(tmp_path):
    main, subagent = session_files(tmp_path / "projects")
    stop = {"session_id": SESSION, "hook_event_name": "Stop", "transcript_path": str(main)}
    assert transcripts_of(stop) == [main, subagent]

    read = StopRead()
    for path in (main, subagent):
        read.read(path, 0)
    assert read.ends == {main: main.stat().st_size, subagent: subagent.stat().st_size}
    assert read.problems() == []
    request, inside = sorted(read.usage(), key=lambda r: r["message_id"])
    assert (request["message_id"], request["output_tokens"], request["cache_write_5m_tokens"],
            request["cache_write_1h_tokens"], request["occurred_at"]) == (
        "msg_1", 300, 1200, 800, "2026-11-03T09:00:00+00:00")  # fmt: skip
    assert (request["project_path"], request["parent_session_id"]) == ("/home/dev/src/app", None)
    assert (inside["session_id"], inside["parent_session_id"]) == (
        f"{SESSION}:agent-a3f9e1", SESSION)  # fmt: skip
    [call] = read.tool_calls()
    assert (call["file_paths"], call["issue_refs"], call["success"]) == (
        ["/home/dev/src/app/a.py"], ["PAP-3"], True)  # fmt: skip

    # a line being written waits for the next stop; a broken one is named and passed over
    with main.open("ab") as handle:
        handle.write(b'{"type":"assistant","broken\n' + orjson.dumps(
            assistant("msg_3", "req_3", "2026-11-03T09:01:00.000Z", usage(), session=SESSION)
        )[:50])  # fmt: skip
    later = StopRead()
    later.read(main, read.ends[main])
    assert later.usage() == [] and len(later.problems()) == 1
    assert later.problems()[0].startswith(f"{main.name} byte {read.ends[main]}: invalid JSON")
    assert read.ends[main] < later.ends[main] < main.stat().st_size


def test_a_subagents_request_read_twice_in_one_stop_is_one_at_its_earliest_time(tmp_path):
    """Claude Code 2.1 writes a subagent's request in the subagent's file and again, a moment
    later, as an `agent_progress` copy in the main transcript."""
    main, subagent = session_files(tmp_path / "projects")
    nested = assistant("msg_2", "req_2", "2026-11-03T09:00:06.500Z", usage(output=40),
                       session=SESSION, model="claude-haiku-4-5-20251001",
                       sidechain=True)  # fmt: skip
    write_jsonl(main, [{"type": "progress", "sessionId": SESSION, "toolUseID": "toolu_7",
                        "timestamp": "2026-11-03T09:00:06.600Z", "uuid": "p-1",
                        "data": {"type": "agent_progress", "agentId": "a3f9e1",
                                 "message": nested}}], mode="ab")  # fmt: skip
    read = StopRead()
    for path in (main, subagent):
        read.read(path, 0)
    copies = [r for r in read.usage() if r["message_id"] == "msg_2"]
    assert [(r["session_id"], r["occurred_at"]) for r in copies] == [
        (f"{SESSION}:agent-a3f9e1", "2026-11-03T09:00:05+00:00")]  # fmt: skip


def test_a_calls_end_read_at_a_later_stop_is_posted_as_its_end(tmp_path):
    """A SubagentStop reads the main transcript while its Task call still runs: the call's
    start is posted then, its result at the next stop. That result is the call's end."""
    main = tmp_path / "projects" / "-home-dev-src-app" / f"{SESSION}.jsonl"
    task = {"type": "tool_use", "id": "toolu_T", "name": "Task",
            "input": {"description": "review", "prompt": "Review PAP-4"}}  # fmt: skip
    write_jsonl(main, [assistant("msg_1", "req_1", "2026-11-03T09:00:00.000Z", usage(),
                                 session=SESSION, content=[task])])  # fmt: skip
    first = StopRead()
    first.read(main, 0)
    [start] = first.tool_calls()
    assert (start["tool_name"], start["started_at"], start["ended_at"]) == (
        "Task", "2026-11-03T09:00:00+00:00", None)  # fmt: skip
    write_jsonl(main, [tool_result("toolu_T", "2026-11-03T09:04:00.000Z", "looks good",
                                   session=SESSION)], mode="ab")  # fmt: skip
    later = StopRead()
    later.read(main, first.ends[main])
    [end] = later.tool_calls()
    assert (end["call_id"], end["tool_name"], end["started_at"], end["ended_at"]) == (
        "toolu_T", None, None, "2026-11-03T09:04:00+00:00")  # fmt: skip
    assert (end["success"], end["result_chars"]) == (True, len("looks good"))


def stop_input(main: Path) -> dict[str, Any]:
    return {"session_id": SESSION, "transcript_path": str(main), "cwd": "/home/dev/src/app",
            "hook_event_name": "Stop", "stop_hook_active": False}  # fmt: skip


@pytest.mark.slow
def test_stops_post_what_file_ingestion_would_store_once_and_resume_after_an_outage(
    tally_env, db_url, conninfo, tmp_path
):  # fmt: skip
    main, _ = session_files(tmp_path / "projects")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        key = create_key(conn, "local", "agent", "eng").key
    port = free_port()
    env = {**os.environ, "TALLY_API_URL": f"http://127.0.0.1:{port}", "TALLY_API_KEY": key,
           "XDG_STATE_HOME": str(tmp_path / "state")}  # fmt: skip

    down = run_hook(stop_input(main), env)  # nothing listens yet: the offset stays
    assert down.returncode == 0 and "the next stop sends" in down.stderr

    def stored() -> list[tuple]:
        with psycopg.connect(conninfo) as conn:
            return conn.execute(
                """SELECT s.session_key, e.message_id, e.output_tokens, e.cache_write_5m_tokens,
                          e.cache_write_1h_tokens, r.session_key FROM token_usage_events e
                   JOIN agent_sessions s ON s.id = e.session_id
                   JOIN agent_sessions r ON r.id = COALESCE(s.root_session_id, s.id)
                   ORDER BY 2"""
            ).fetchall()

    with serving(db_url, tmp_path / "data", port):
        assert run_hook(stop_input(main), env).stderr == ""
        posted = stored()
        # the subagent's requests count under the session that spawned it
        assert posted == [(SESSION, "msg_1", 300, 1200, 800, SESSION),
                          (f"{SESSION}:agent-a3f9e1", "msg_2", 40, 0, 0, SESSION)]  # fmt: skip
        with psycopg.connect(conninfo) as conn:
            quiet = conn.execute("SELECT max(xmin::text::bigint) FROM token_usage_events")
            before = quiet.fetchone()
        assert run_hook(stop_input(main), env).stderr == ""  # nothing new: nothing sent
        write_jsonl(main, [assistant("msg_3", "req_3", "2026-11-03T09:02:00.000Z", usage(),
                                     session=SESSION)], mode="ab")  # fmt: skip
        assert run_hook(stop_input(main), env).stderr == ""
        assert [row[1] for row in stored()] == ["msg_1", "msg_2", "msg_3"]
    with psycopg.connect(conninfo) as conn:
        untouched = conn.execute(
            "SELECT max(xmin::text::bigint) FROM token_usage_events WHERE message_id <> 'msg_3'"
        ).fetchone()
    assert untouched == before

    # the files read by tally itself: the same requests, nothing added, nothing changed
    summary = ingest(conninfo, CLAUDE_CODE, tmp_path / "projects")
    assert (summary.events_new, summary.tool_calls_new) == (0, 0)
    assert stored() == [*posted, (SESSION, "msg_3", 100, 0, 0, SESSION)]


@pytest.mark.slow
def test_a_hard_stop_blocks_the_next_prompt_and_tool_call_and_nothing_else(
    tally_env, db_url, conninfo, tmp_path
):  # fmt: skip
    with psycopg.connect(conninfo, autocommit=True) as conn:
        agent = create_key(conn, "local", "agent", "eng").key
        board = create_key(conn, "local", "board").key
        create_key(conn, "local", "agent", "ops")
    board_auth, agent_auth = ({"Authorization": f"Bearer {k}"} for k in (board, agent))
    with serving(db_url, tmp_path / "data") as url:

        def policy(agent_name: str, amount: str, hard_stop: bool = True) -> int:
            made = httpx.post(f"{url}/v1/budget-policies", headers=board_auth, json={
                "scope_type": "agent", "scope": agent_name, "metric": "runs",
                "window_kind": "lifetime", "amount": amount, "hard_stop": hard_stop})  # fmt: skip
            assert made.status_code == 201, made.text
            return int(made.json()["id"])

        def set_active(policy_id: int, active: bool) -> None:
            changed = httpx.patch(f"{url}/v1/budget-policies/{policy_id}", headers=board_auth,
                                  json={"active": active})  # fmt: skip
            assert changed.status_code == 200, changed.text

        policy("eng", "100")
        policy("eng", "1", hard_stop=False)  # exceeded, but only a warning
        policy("ops", "1")  # exceeded and a hard stop, for another agent
        runs = [{"run_id": f"run-{n}", "status": "succeeded",
                 "started_at": f"2026-11-03T0{n}:00:00Z",
                 "finished_at": f"2026-11-03T0{n}:30:00Z"} for n in (1, 2)]  # fmt: skip
        posted = httpx.post(f"{url}/v1/heartbeat-runs", headers=agent_auth,
                            json={"records": runs})  # fmt: skip
        assert posted.json()["accepted"] == 2
        env = {**os.environ, "TALLY_API_URL": url, "TALLY_API_KEY": agent,
               "TALLY_ENFORCE_BUDGETS": "1"}  # fmt: skip
        start = hook_input("PreToolUse", "Bash", {"command": "make deploy"})
        prompt = {"session_id": SESSION, "hook_event_name": "UserPromptSubmit", "prompt": "go"}

        within = run_hook(start, env)
        assert (within.returncode, within.stderr) == (0, "")
        tight = policy("eng", "1")
        for payload in ({**start, "tool_use_id": "toolu_blocked"}, prompt):
            blocked = run_hook(payload, env)
            assert blocked.returncode == 2
            assert blocked.stderr.startswith(
                f"tally: budget policy {tight} is exceeded and is a hard stop: 2 of 1 (runs, "
                "lifetime window"
            )
        unenforced = run_hook(start, {**env, "TALLY_ENFORCE_BUDGETS": "0"})
        assert unenforced.returncode == 0
        set_active(tight, False)  # the board lifts it
        assert run_hook(start, env).returncode == 0
    unreachable = run_hook(start, env)  # the API is gone: said, and the agent goes on
    assert unreachable.returncode == 0 and "not enforced this time" in unreachable.stderr
    with psycopg.connect(conninfo) as conn:  # the blocked call never ran: never posted
        calls = conn.execute("SELECT call_key FROM tool_calls").fetchall()
    assert calls == [("toolu_01DUa8",)]
