"""The HTTP API in-process (FastAPI's test client) on the test's own PostgreSQL and DuckDB:
authentication and scope, batch ingestion answered per record, governance writes with their
audit rows, reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ingestion.keys import create_key
from ingestion.sources import CLAUDE_CODE
from tests.api_helpers import Keys, auth, count, post, usage_record
from tests.builders import assistant, tool_result, usage, write_jsonl
from tests.ingest_helpers import ingest


@pytest.fixture
def client(tally_env, db_url, tmp_path):
    app = create_app(db_url, f"duckdb://{tmp_path / 'warehouse.duckdb'}", max_body_bytes=200_000)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def keys(client, conninfo) -> Keys:
    return Keys.create(conninfo)


def issue(conninfo: str, identifier: str = "PAP-1", company: str = "acme") -> int:
    with psycopg.connect(conninfo) as conn:
        company_id = conn.execute(
            "SELECT id FROM companies WHERE slug = %s", (company,)
        ).fetchone()[0]
        return conn.execute(
            """INSERT INTO issues (company_id, source, external_id, identifier, number, title,
                   status) VALUES (%s, 'paperclip', %s, %s, 1, 'Invoice', 'in_progress')
               RETURNING id""",
            (company_id, f"uuid-{identifier}", identifier),
        ).fetchone()[0]


# -- authentication and scope ----------------------------------------------------------------


def test_health_needs_no_key_and_everything_else_does(client, keys):
    assert client.get("/health").json() == {"status": "ok"}
    for method, path in (
        ("post", "/v1/usage-events"),
        ("get", "/v1/costs"),
        ("get", "/v1/budget-policies"),
    ):
        response = client.request(method, path, json={"records": [usage_record(1)]})
        assert response.status_code == 401
        assert response.json()["error"] == "unauthenticated"
        assert response.headers["www-authenticate"] == "Bearer"
    wrong = client.get("/v1/costs", headers=auth("tly_000000000000_" + "x" * 43))
    assert wrong.status_code == 401


def test_a_revoked_key_is_refused_at_once(client, keys, conninfo):
    assert post(client, "/v1/usage-events", keys.agent, [usage_record(1)]).status_code == 200
    from ingestion.keys import revoke_key

    with psycopg.connect(conninfo) as conn:
        key_id = conn.execute(
            "SELECT id FROM api_keys WHERE role = 'agent' ORDER BY id LIMIT 1"
        ).fetchone()[0]
        revoke_key(conn, key_id)
    refused = post(client, "/v1/usage-events", keys.agent, [usage_record(2)])
    assert refused.status_code == 401
    assert count(conninfo, "token_usage_events") == 1


def test_agent_keys_write_only_as_their_agent_and_nothing_is_written(client, keys, conninfo):
    batch = [usage_record(1), usage_record(2, agent="ops")]
    refused = post(client, "/v1/usage-events", keys.agent, batch)
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert count(conninfo, "token_usage_events") == 0
    assert post(client, "/v1/usage-events", keys.agent, [usage_record(1)]).json()["accepted"] == 1
    # s-1 is eng's session now: ops cannot write into it
    intrusion = post(client, "/v1/usage-events", keys.other_agent, [usage_record(3)])
    assert intrusion.status_code == 403
    assert count(conninfo, "token_usage_events") == 1


def test_governance_writes_are_for_board_keys_only(client, keys, conninfo):
    policy = {
        "scope_type": "company",
        "window_kind": "calendar_month",
        "metric": "usd",
        "amount": "500",
    }
    for key in (keys.agent, keys.service):
        response = client.post("/v1/budget-policies", json=policy, headers=auth(key))
        assert response.status_code == 403
    assert count(conninfo, "budget_policies") == 0
    assert (
        client.post("/v1/budget-policies", json=policy, headers=auth(keys.board)).status_code == 201
    )


def test_another_companys_entities_are_forbidden_and_unchanged(client, keys, conninfo):
    policy = client.post(
        "/v1/budget-policies",
        headers=auth(keys.board),
        json={"scope_type": "company", "window_kind": "day", "metric": "tokens", "amount": "1000"},
    ).json()
    path = f"/v1/budget-policies/{policy['id']}"
    other = auth(keys.other_board)
    assert client.get(path, headers=other).status_code == 403
    assert client.patch(path, json={"amount": "1"}, headers=other).status_code == 403
    assert client.delete(path, headers=other).status_code == 403
    assert client.get(f"{path}/status", headers=other).status_code == 403
    assert client.get(path, headers=auth(keys.board)).json()["amount"] == "1000.000000000000"
    assert client.get("/v1/budget-policies", headers=other).json() == []
    with psycopg.connect(conninfo) as conn:
        actions = conn.execute("SELECT action FROM activity_log ORDER BY id").fetchall()
    assert actions == [("budget_policy.created",)]


def test_injection_strings_are_stored_verbatim_and_returned_escaped(client, keys, conninfo):
    sql = "x'); DROP TABLE token_usage_events; --"
    script = '<script>alert("owned")</script>'
    record = usage_record(1, session=sql, model=script)
    assert post(client, "/v1/usage-events", keys.agent, [record]).json()["accepted"] == 1
    with psycopg.connect(conninfo) as conn:
        stored = conn.execute(
            """SELECT s.session_key, e.model FROM token_usage_events e
               JOIN agent_sessions s ON s.id = e.session_id"""
        ).fetchone()
    assert stored == (sql, script)
    rubric = client.post(
        "/v1/evaluation-rubrics",
        headers=auth(keys.board),
        json={"name": script, "criteria": {"note": sql}},
    )
    assert rubric.status_code == 201
    read = client.get(f"/v1/evaluation-rubrics/{rubric.json()['id']}", headers=auth(keys.board))
    assert read.headers["content-type"] == "application/json"
    assert read.json()["name"] == script and read.json()["criteria"] == {"note": sql}
    assert '\\"owned\\"' in read.text  # JSON-escaped, never raw markup


# -- ingestion -------------------------------------------------------------------------------


def test_a_batch_is_answered_per_record_and_a_replay_creates_nothing(client, keys, conninfo):
    batch = [usage_record(n) for n in range(5)]
    batch[2] = {**batch[2], "input_tokens": -3}
    batch[3] = {**batch[3], "surprise": True}
    first = post(client, "/v1/usage-events", keys.agent, batch).json()
    assert (first["accepted"], first["duplicates"], first["rejected"]) == (3, 0, 2)
    reasons = {r["index"]: r["reason"] for r in first["results"] if r["status"] == "rejected"}
    assert reasons[2].startswith("input_tokens:") and reasons[3].startswith("surprise:")
    replay = post(client, "/v1/usage-events", keys.agent, batch).json()
    assert (replay["accepted"], replay["duplicates"], replay["rejected"]) == (0, 3, 2)
    assert count(conninfo, "token_usage_events") == 3
    assert count(conninfo, "agent_sessions") == 1
    with psycopg.connect(conninfo) as conn:
        agent = conn.execute(
            "SELECT a.name, s.agent_link FROM agent_sessions s JOIN agents a ON a.id = s.agent_id"
        ).fetchone()
    assert agent == ("eng", "api-key")


def test_true_or_false_for_a_number_is_rejected_per_record(client, keys, conninfo):
    """pydantic reads `true` as 1: a hook sending a flag for a count had its request stored
    with one token. Booleans stay what boolean fields take."""
    batch = [usage_record(n) for n in range(3)]
    batch[0] = {**batch[0], "input_tokens": True}
    batch[1] = {**batch[1], "reported_cost_usd": False}
    answer = post(client, "/v1/usage-events", keys.agent, batch).json()
    assert (answer["accepted"], answer["rejected"]) == (1, 2)
    reasons = [r["reason"] for r in answer["results"] if r["status"] == "rejected"]
    assert reasons == ["input_tokens: Value error, a number is required, not true or false",
                       "reported_cost_usd: Value error, a number is required, not true or "
                       "false"]  # fmt: skip
    assert count(conninfo, "token_usage_events") == 1
    call = {"session_id": "s-1", "call_id": "c1", "tool_name": "Bash",
            "started_at": "2026-11-21T10:00:00Z", "success": True}  # fmt: skip
    answer = post(client, "/v1/tool-calls", keys.agent,
                  [call, {**call, "call_id": "c2", "duration_ms": False}]).json()  # fmt: skip
    assert [r["status"] for r in answer["results"]] == ["accepted", "rejected"]
    assert answer["results"][1]["reason"].startswith("duration_ms: Value error, a number")


def test_a_lone_half_of_a_surrogate_pair_is_read_as_the_files_are(client, keys, conninfo):
    """A hook's JSON.stringify writes an emoji cut in two as a lone escape (`\\ud83d`), which
    orjson refuses: the record is read with U+FFFD in its place, as transcripts are, rather
    than the whole batch refused."""
    body = orjson.dumps({"records": [usage_record(1, session="s-CUT")]})
    response = client.post(
        "/v1/usage-events",
        content=body.replace(b"CUT", b"\\ud83d"),
        headers={**auth(keys.agent), "content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    with psycopg.connect(conninfo) as conn:
        stored = conn.execute("SELECT session_key FROM agent_sessions").fetchone()
    assert stored == ("s-\ufffd",)


def test_times_outside_2000_to_2100_are_rejected_per_record(client, keys, conninfo):
    """PostgreSQL stores 0001-01-01T00:00:00+14:00 as a day of 1 BC, which no report could
    read back; such a record is rejected and its neighbours are kept."""
    batch = [usage_record(n) for n in range(3)]
    batch[0] = {**batch[0], "occurred_at": "0001-01-01T00:00:00+14:00"}
    batch[1] = {**batch[1], "occurred_at": "2100-01-01T00:00:00Z"}
    answer = post(client, "/v1/usage-events", keys.agent, batch).json()
    assert (answer["accepted"], answer["rejected"]) == (1, 2)
    assert all(
        r["reason"].startswith("occurred_at:")
        for r in answer["results"]
        if r["status"] == "rejected"
    )
    assert count(conninfo, "token_usage_events") == 1


def test_a_session_widens_only_when_a_batch_extends_it(client, keys, conninfo):
    def session() -> tuple:
        with psycopg.connect(conninfo) as conn:
            return conn.execute(
                """SELECT first_activity_at::text, last_activity_at::text, project_path,
                          agent_id IS NOT NULL, xmin::text FROM agent_sessions"""
            ).fetchone()

    def send(key: str, n: int, **extra) -> None:
        answer = post(client, "/v1/usage-events", key, [usage_record(n, **extra)])
        assert answer.status_code == 200, answer.text

    send(keys.service, 30)
    send(keys.service, 40)
    first = session()
    assert first[:4] == ("2026-11-01 10:30:00+00", "2026-11-01 10:40:00+00", None, False)
    send(keys.service, 35)  # inside the span
    assert session() == first  # read, not rewritten
    send(keys.service, 32, occurred_at="2026-11-01T09:00:00Z", project_path="/w/app")
    send(keys.agent, 33, occurred_at="2026-11-01T11:00:00Z")
    widened = session()
    assert widened[:4] == ("2026-11-01 09:00:00+00", "2026-11-01 11:00:00+00", "/w/app", True)
    send(keys.agent, 30)  # a replay changes nothing
    assert session() == widened
    assert count(conninfo, "token_usage_events") == 5


def test_malformed_and_oversize_bodies(client, keys):
    headers = {**auth(keys.agent), "content-type": "application/json"}
    not_json = client.post("/v1/usage-events", content=b"{nope", headers=headers)
    assert not_json.status_code == 422 and not_json.json()["error"] == "invalid"
    no_list = client.post("/v1/usage-events", json={"records": {"a": 1}}, headers=auth(keys.agent))
    assert no_list.status_code == 422
    assert no_list.json()["details"][0]["loc"] == ["body", "records"]
    too_many = post(client, "/v1/usage-events", keys.agent, [usage_record(1)] * 1001)
    assert too_many.status_code in (413, 422)
    huge = client.post("/v1/usage-events", content=b"x" * 300_000, headers=headers)
    assert huge.status_code == 413 and huge.json()["error"] == "payload_too_large"
    bad_query = client.get("/v1/costs?group_by=planet", headers=auth(keys.board))
    assert bad_query.status_code == 422
    assert bad_query.json()["details"][0]["loc"] == ["query", "group_by"]


def test_every_malformed_body_is_a_422_the_document_lists(client, keys):
    # bytes that are not UTF-8: FastAPI's own answer was an undocumented 400
    for path, key in (("/v1/budget-policies", keys.board), ("/v1/usage-events", keys.agent)):
        headers = {**auth(key), "content-type": "application/json"}
        answer = client.post(path, content=b"\x1c\xff\xfe{", headers=headers)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["error"] == "invalid"
    extra = client.post(
        "/v1/usage-events",
        json={"records": [usage_record(1)], "recrods": []},
        headers=auth(keys.agent),
    )
    assert extra.status_code == 422  # the envelope is additionalProperties: false
    assert extra.json()["details"] == [{"loc": ["body", "recrods"], "message": "unknown key"}]
    document = client.get("/openapi.json").json()
    for status in ("400", "422"):
        documented = document["paths"]["/v1/budget-policies"]["post"]["responses"]
        assert (status in documented) == (status == "422")


def test_a_method_a_path_does_not_take_is_405_naming_those_it_does(client, keys):
    answer = client.request("TRACE", "/v1/budget-policies", headers=auth(keys.board))
    assert answer.status_code == 405 and answer.json()["error"] == "method_not_allowed"
    assert set(answer.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_decimals_in_text_are_the_ones_the_document_describes(client, keys):
    from api.decimals import DECIMAL_TEXT_PATTERN

    document = client.get("/openapi.json").json()["components"]["schemas"]
    for model, field in (
        ("BudgetPolicyIn", "amount"),
        ("BudgetPolicyPatch", "amount"),
        ("PriceOverrideIn", "input_per_mtok"),
        ("AnnotationIn", "score"),
        ("UsageEventIn", "reported_cost_usd"),
    ):
        branches = document[model]["properties"][field]["anyOf"]
        text = [branch for branch in branches if branch.get("type") == "string"]
        assert text == [{"type": "string", "pattern": DECIMAL_TEXT_PATTERN}], model
    policy = {"name": "cap", "scope_type": "company", "window_kind": "day", "metric": "usd"}
    for amount, status in (("12.5", 201), (" 1e2 ", 201), (7, 201), ("1_000", 422),
                           ("\u0661\u0662", 422), ("12 USD", 422), ("", 422)):  # fmt: skip
        answer = client.post(
            "/v1/budget-policies", json={**policy, "amount": amount}, headers=auth(keys.board)
        )
        assert answer.status_code == status, (amount, answer.text)
        if status == 422:
            assert answer.json()["details"][0]["loc"] == ["body", "amount"]
    cost = usage_record(1, reported_cost_usd="1_0")
    assert post(client, "/v1/usage-events", keys.agent, [cost]).json()["rejected"] == 1


def test_a_tool_call_posted_in_halves_is_one_call_with_both(client, keys, conninfo):
    """As hooks see a call: PreToolUse posts its start, PostToolUse (which knows its own time,
    not the call's start) its end and outcome. The second half completes the call instead of
    coming back `duplicate` with its end and outcome dropped."""
    start = {"session_id": "s-1", "call_id": "toolu_9", "tool_name": "Edit",
             "started_at": "2026-11-01T10:00:00Z", "file_paths": ["/w/a.py"]}  # fmt: skip
    end = {**start, "started_at": "2026-11-01T10:00:04Z", "ended_at": "2026-11-01T10:00:04Z",
           "success": False, "error_message": "old_string not found", "result_chars": 30,
           "file_paths": ["/w/b.py"], "issue_refs": ["PAP-1"]}  # fmt: skip

    def stored() -> tuple:
        with psycopg.connect(conninfo) as conn:
            return conn.execute(
                """SELECT started_at::text, ended_at::text, duration_ms, success, error_message,
                          result_chars, file_paths, issue_refs, xmin::text FROM tool_calls"""
            ).fetchone()

    assert post(client, "/v1/tool-calls", keys.agent, [start]).json()["accepted"] == 1
    assert stored()[1:4] == (None, None, None)
    assert post(client, "/v1/tool-calls", keys.agent, [end]).json()["accepted"] == 1
    merged = stored()
    assert merged[:8] == (
        "2026-11-01 10:00:00+00", "2026-11-01 10:00:04+00", 4000, False, "old_string not found",
        30, ["/w/a.py", "/w/b.py"], ["PAP-1"],
    )  # fmt: skip
    for retry in (start, end, {**end, "success": True, "result_chars": 10}):
        answer = post(client, "/v1/tool-calls", keys.agent, [retry]).json()
        assert answer["duplicates"] == 1, answer
    assert stored() == merged  # nothing known overwritten, not even rewritten

    # the same call in another session's lines (a resumed session repeats the calls of the
    # one it resumes): one call, in the session it was first stored under, as file ingestion
    # keeps it
    resumed = post(client, "/v1/tool-calls", keys.agent,
                   [{**end, "session_id": "s-2", "success": True}]).json()  # fmt: skip
    assert resumed["duplicates"] == 1
    assert stored() == merged
    # another agent cannot complete (or learn by probing) a call of this agent's sessions
    theirs = post(client, "/v1/tool-calls", keys.other_agent,
                  [{**end, "session_id": "s-3", "result_chars": 99}])  # fmt: skip
    assert theirs.status_code == 403 and "another agent's session" in theirs.text
    assert stored() == merged
    assert count(conninfo, "tool_calls") == 1


def test_a_calls_end_posted_alone_completes_it_in_either_order(client, keys, conninfo):
    """A stop may read a call's result without its start (read at an earlier stop): the
    end alone is a half, as a transcript's `tool_result` is to file ingestion."""
    start = {"source": "claude_code", "session_id": "s-1", "call_id": "toolu_A",
             "tool_name": "Task", "started_at": "2026-11-01T10:00:00Z"}  # fmt: skip
    end = {"source": "claude_code", "session_id": "s-1", "call_id": "toolu_A",
           "ended_at": "2026-11-01T10:04:00Z", "success": True, "result_chars": 10}  # fmt: skip
    assert post(client, "/v1/tool-calls", keys.agent, [start]).json()["accepted"] == 1
    assert post(client, "/v1/tool-calls", keys.agent, [end]).json()["accepted"] == 1
    assert post(client, "/v1/tool-calls", keys.agent, [end]).json()["duplicates"] == 1
    ended_first = [{**end, "call_id": "toolu_B"}, {**start, "call_id": "toolu_B"}]
    for record in ended_first:
        assert post(client, "/v1/tool-calls", keys.agent, [record]).json()["accepted"] == 1
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            """SELECT call_key, tool_name, started_at::text, ended_at::text, duration_ms,
                      success, result_chars FROM tool_calls ORDER BY call_key"""
        ).fetchall()
    assert rows == [
        (call, "Task", "2026-11-01 10:00:00+00", "2026-11-01 10:04:00+00", 240_000, True, 10)
        for call in ("toolu_A", "toolu_B")
    ]
    neither = {"session_id": "s-1", "call_id": "c9", "tool_name": "Bash"}
    nameless = {"session_id": "s-1", "call_id": "c9", "started_at": "2026-11-01T10:00:00Z"}
    answer = post(client, "/v1/tool-calls", keys.agent, [neither, nameless]).json()
    assert [r["reason"] for r in answer["results"]] == [
        "record: Value error, a call needs started_at, or ended_at for the half that reports "
        "its end",
        "record: Value error, tool_name is required with started_at",
    ]


def test_the_transcripts_outcome_of_a_call_wins_over_a_hooks(client, conninfo, tmp_path):
    """A hook says a call succeeded; the transcript, which holds what the model read, says it
    failed: the call failed, with the transcript's error."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        key = create_key(conn, "local", "service").key
    hooked = {"source": "claude_code", "session_id": "s1", "call_id": "toolu_3",
              "tool_name": "Bash", "started_at": "2026-11-01T10:00:01Z",
              "ended_at": "2026-11-01T10:00:02Z", "success": True}  # fmt: skip
    assert post(client, "/v1/tool-calls", key, [hooked]).json()["accepted"] == 1
    use = {"type": "tool_use", "id": "toolu_3", "name": "Bash", "input": {"command": "make"}}
    write_jsonl(tmp_path / "projects" / "-w-app" / "s1.jsonl", [
        assistant("msg_1", "req_1", "2026-11-01T10:00:00.000Z", usage(), content=[use]),
        tool_result("toolu_3", "2026-11-01T10:00:02.000Z", "Exit code 2", is_error=True),
    ])  # fmt: skip
    ingest(conninfo, CLAUDE_CODE, tmp_path / "projects")
    with psycopg.connect(conninfo) as conn:
        stored = conn.execute("SELECT success, error_message FROM tool_calls").fetchall()
    assert stored == [(False, "Exit code 2")]


def test_a_subagents_session_is_linked_under_the_session_that_spawned_it(
    client, keys, conninfo
):  # fmt: skip
    """Its requests then count under the parent's tree, as file ingestion links a subagent's
    transcript; the parent is created if it is not known yet, and an agent key cannot hang
    its sessions under another agent's."""
    inside = usage_record(1, session="s-1:agent-a1", parent_session_id="s-1",
                          source="claude_code")  # fmt: skip
    assert post(client, "/v1/usage-events", keys.agent, [inside]).json()["accepted"] == 1
    call = {"session_id": "s-1:agent-a2", "parent_session_id": "s-1", "source": "claude_code",
            "call_id": "toolu_1", "tool_name": "Read",
            "started_at": "2026-11-01T10:05:00Z"}  # fmt: skip
    assert post(client, "/v1/tool-calls", keys.agent, [call]).json()["accepted"] == 1

    def tree() -> list[tuple]:
        with psycopg.connect(conninfo) as conn:
            return conn.execute(
                """SELECT s.session_key, p.session_key, r.session_key, s.is_subagent
                   FROM agent_sessions s LEFT JOIN agent_sessions p ON p.id = s.parent_session_id
                   LEFT JOIN agent_sessions r ON r.id = s.root_session_id ORDER BY 1"""
            ).fetchall()

    linked = [("s-1", None, None, False), ("s-1:agent-a1", "s-1", "s-1", True),
              ("s-1:agent-a2", "s-1", "s-1", True)]  # fmt: skip
    assert tree() == linked
    other = usage_record(2, session="s-9", parent_session_id="s-1", source="claude_code")
    refused = post(client, "/v1/usage-events", keys.other_agent, [other])
    assert refused.status_code == 403 and "belongs to another agent" in refused.text
    assert tree() == linked and count(conninfo, "token_usage_events") == 1


def test_tool_calls_runs_and_hints(client, keys, conninfo):
    issue_id = issue(conninfo)
    call = {
        "session_id": "s-1",
        "call_id": "toolu_1",
        "tool_name": "mcp__pigeon__getBoard",
        "mcp_server": "pigeon",
        "started_at": "2026-11-01T10:00:00Z",
        "ended_at": "2026-11-01T10:00:02.5Z",
        "success": True,
        "result_chars": 400,
    }
    assert post(client, "/v1/tool-calls", keys.agent, [call]).json()["accepted"] == 1
    assert post(client, "/v1/tool-calls", keys.agent, [call]).json()["duplicates"] == 1
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SELECT duration_ms FROM tool_calls").fetchone()[0] == 2500

    run = {
        "run_id": "run-1",
        "status": "running",
        "issue": "PAP-1",
        "started_at": "2026-11-01T10:00:00Z",
        "adapter_session_id": "s-1",
        "events": [{"seq": 1, "event_type": "lifecycle", "occurred_at": "2026-11-01T10:00:00Z"}],
    }
    assert post(client, "/v1/heartbeat-runs", keys.agent, [run]).json()["accepted"] == 1
    assert post(client, "/v1/heartbeat-runs", keys.agent, [run]).json()["duplicates"] == 1
    finished = {
        **run,
        "status": "succeeded",
        "finished_at": "2026-11-01T11:00:00Z",
        "events": [
            *run["events"],
            {"seq": 2, "event_type": "lifecycle", "occurred_at": "2026-11-01T11:00:00Z"},
        ],
    }
    assert post(client, "/v1/heartbeat-runs", keys.agent, [finished]).json()["accepted"] == 1
    # the "running" report of a hook that lost a race with the run's end: the end stands, as
    # in Paperclip, and what the late report adds (an event) is kept
    late = {**run, "events": [{"seq": 2, "event_type": "lifecycle",
                               "occurred_at": "2026-11-01T11:00:00Z"}]}  # fmt: skip
    assert post(client, "/v1/heartbeat-runs", keys.agent, [late]).json()["duplicates"] == 1
    cancelled = {**finished, "status": "cancelled"}
    assert post(client, "/v1/heartbeat-runs", keys.agent, [cancelled]).json()["duplicates"] == 1
    ghost = post(
        client, "/v1/heartbeat-runs", keys.agent, [{**run, "run_id": "run-2", "issue": "PAP-404"}]
    ).json()
    assert "not an issue of this company" in ghost["results"][0]["reason"]
    assert post(client, "/v1/heartbeat-runs", keys.other_agent, [finished]).status_code == 403
    with psycopg.connect(conninfo) as conn:
        stored = conn.execute(
            """SELECT r.status, r.issue_id, count(e.id) FROM heartbeat_runs r
               JOIN heartbeat_run_events e ON e.run_id = r.id GROUP BY 1, 2"""
        ).fetchall()
    assert stored == [("succeeded", issue_id, 2)]

    hint = {
        "hint_id": "h-1",
        "issue": "PAP-1",
        "session_id": "s-1",
        "valid_from": "2026-11-01T10:00:00Z",
    }
    answer = post(
        client,
        "/v1/attribution-hints",
        keys.agent,
        [hint, {**hint, "hint_id": "h-2", "issue": "nope"}],
    ).json()
    assert [r["status"] for r in answer["results"]] == ["accepted", "rejected"]
    assert post(client, "/v1/attribution-hints", keys.agent, [hint]).json()["duplicates"] == 1


# -- governance ------------------------------------------------------------------------------


def test_annotations_name_their_target_by_its_own_key(client, keys, conninfo):
    """An annotator sees session ids, message ids and issue identifiers in the reads and the
    attribution export, never tally's row ids, which were the only way to name a target."""
    board = auth(keys.board)
    assert post(client, "/v1/usage-events", keys.agent, [usage_record(1)]).json()["accepted"] == 1
    run = {"run_id": "run-9", "status": "succeeded", "started_at": "2026-11-01T10:00:00Z"}
    assert post(client, "/v1/heartbeat-runs", keys.agent, [run]).json()["accepted"] == 1
    with psycopg.connect(conninfo) as conn:
        ids = dict(conn.execute(
            """SELECT 'event', id FROM token_usage_events UNION ALL
               SELECT 'session', id FROM agent_sessions WHERE session_key = 's-1' UNION ALL
               SELECT 'run', id FROM heartbeat_runs WHERE external_id = 'run-9'"""
        ).fetchall())  # fmt: skip

    def annotate(kind: str, **target: object):
        body = {"target_type": kind, **target, "label": "reviewed"}
        return client.post("/v1/annotations", headers=board, json=body)

    for kind, key, stored in (("token_usage_event", "msg-1", ids["event"]),
                              ("agent_session", "s-1", ids["session"]),
                              ("heartbeat_run", "run-9", ids["run"])):  # fmt: skip
        made = annotate(kind, target=key)
        assert made.status_code == 201, made.json()
        assert made.json()["target_id"] == stored
    missing = annotate("agent_session", target="s-404").json()
    assert missing["details"][0] == {"loc": ["body", "target"],
                                     "message": "no session 's-404' in this company"}  # fmt: skip
    for both_or_neither in ({"target": "s-1", "target_id": ids["session"]}, {}):
        refused = annotate("agent_session", **both_or_neither)
        assert refused.status_code == 422
        assert "by target_id or by target, one of the two" in str(refused.json()["details"])
    # another company's session is no target of this one's
    other = client.post("/v1/annotations", headers=auth(keys.other_board),
                        json={"target_type": "agent_session", "target": "s-1"})  # fmt: skip
    assert other.status_code == 422


def test_an_intervention_ends_after_it_takes_effect(client, keys):
    """Ended with no time, an intervention ended now (it had no end at all, and read as
    lasting for ever); an end before its start is refused, whether given at creation or
    later against the stored start."""
    board = auth(keys.board)
    post(client, "/v1/usage-events", keys.agent, [usage_record(1)])  # agent eng exists
    body = {"agent": "eng", "kind": "model", "effective_at": "2026-11-02T00:00:00Z"}
    backwards = client.post("/v1/interventions", headers=board,
                            json={**body, "ended_at": "2026-11-01T00:00:00Z"})  # fmt: skip
    assert backwards.status_code == 422
    assert "ended_at is before effective_at" in str(backwards.json()["details"])
    made = client.post("/v1/interventions", headers=board, json=body).json()
    early = client.patch(f"/v1/interventions/{made['id']}", headers=board,
                         json={"ended_at": "2026-11-01T00:00:00Z"})  # fmt: skip
    assert early.status_code == 422
    assert early.json()["details"][0]["loc"] == ["body", "ended_at"]
    before = datetime.now(UTC)
    ended = client.patch(f"/v1/interventions/{made['id']}", headers=board,
                         json={"status": "ended"}).json()  # fmt: skip
    assert ended["status"] == "ended"
    assert datetime.fromisoformat(ended["ended_at"]) >= before - timedelta(seconds=5)


def test_an_override_for_every_company_is_listed_read_only(client, keys, conninfo):
    """`tally prices set` makes overrides for every company: they price each company's usage
    too, yet a board reading its overrides through the API saw none of them."""
    with psycopg.connect(conninfo) as conn:
        everyone = conn.execute(
            """INSERT INTO price_overrides (company_id, provider, model_pattern, effective_from,
                   input_per_mtok) VALUES (NULL, 'anthropic', 'claude-.*', '2026-10-01', 1)
               RETURNING id"""
        ).fetchone()[0]
    board = auth(keys.board)
    own = client.post("/v1/price-overrides", headers=board, json={
        "provider": "anthropic", "model_pattern": "claude-sonnet-4.*",
        "effective_from": "2026-11-01", "input_per_mtok": "2.5"}).json()  # fmt: skip
    listed = client.get("/v1/price-overrides", headers=board).json()
    assert [(row["id"], row["for_every_company"]) for row in listed] == [
        (everyone, True),
        (own["id"], False),
    ]
    assert client.get(f"/v1/price-overrides/{everyone}", headers=board).status_code == 200
    changed = client.patch(f"/v1/price-overrides/{everyone}", headers=board,
                           json={"note": "ours now"})  # fmt: skip
    assert changed.status_code == 403 and "is for every company" in changed.json()["message"]
    assert client.delete(f"/v1/price-overrides/{everyone}", headers=board).status_code == 403
    other = client.get("/v1/price-overrides", headers=auth(keys.other_board)).json()
    assert [row["id"] for row in other] == [everyone]  # not acme's own


def test_governance_crud_leaves_an_audit_trail(client, keys, conninfo):
    board = auth(keys.board)
    issue_id = issue(conninfo)
    post(client, "/v1/usage-events", keys.agent, [usage_record(1)])  # creates agent eng's use
    policy = client.post(
        "/v1/budget-policies",
        headers=board,
        json={
            "name": "eng monthly",
            "scope_type": "agent",
            "scope": "eng",
            "window_kind": "rolling_days",
            "window_days": 7,
            "metric": "usd",
            "amount": "250.5",
            "warn_percent": 75,
            "hard_stop": True,
        },
    ).json()
    assert policy["scope_type"] == "agent" and policy["window_days"] == 7
    missing_days = client.post(
        "/v1/budget-policies",
        headers=board,
        json={
            "scope_type": "company",
            "window_kind": "rolling_days",
            "metric": "runs",
            "amount": "5",
        },
    )
    assert missing_days.status_code == 422
    unknown = client.post(
        "/v1/budget-policies",
        headers=board,
        json={
            "scope_type": "project",
            "scope": "nope",
            "window_kind": "day",
            "metric": "usd",
            "amount": "5",
        },
    )
    assert unknown.status_code == 422 and unknown.json()["details"][0]["loc"] == ["body", "scope"]
    changed = client.patch(
        f"/v1/budget-policies/{policy['id']}", headers=board, json={"amount": "300"}
    ).json()
    assert changed["amount"] == "300.000000000000"

    override = client.post(
        "/v1/price-overrides",
        headers=board,
        json={
            "provider": "anthropic",
            "model_pattern": "claude-sonnet-4.*",
            "effective_from": "2026-11-01",
            "input_per_mtok": "2.5",
        },
    ).json()
    assert override["input_per_mtok"] == "2.500000000000"
    assert override["warnings"] == []  # claude-sonnet-4-5 has usage
    bad_regex = client.post(
        "/v1/price-overrides",
        headers=board,
        json={"provider": "x", "model_pattern": "([", "effective_from": "2026-11-01"},
    )
    assert bad_regex.status_code == 422
    lookahead = client.post(
        "/v1/price-overrides",
        headers=board,
        json={"provider": "x", "model_pattern": "a(?=b)", "effective_from": "2026-11-01"},
    )
    assert lookahead.status_code == 422 and "RE2 syntax" in lookahead.text
    for price in ("1000000000000", "NaN", "Infinity", "-1"):  # the column holds < 10^12
        refused = client.post(
            "/v1/price-overrides",
            headers=board,
            json={
                "provider": "x",
                "model_pattern": "y",
                "effective_from": "2026-11-01",
                "input_per_mtok": price,
            },
        )
        assert refused.status_code == 422, (price, refused.text)
        assert refused.json()["details"][0]["loc"] == ["body", "input_per_mtok"]
    # an end given alone, on a change, is checked against the stored start
    ends_first = client.patch(f"/v1/price-overrides/{override['id']}", headers=board,
                              json={"effective_to": "2026-10-15"})  # fmt: skip
    assert ends_first.status_code == 422
    assert ends_first.json()["details"][0]["loc"] == ["body", "effective_to"]
    assert client.delete(f"/v1/price-overrides/{override['id']}", headers=board).status_code == 204

    intervention = client.post(
        "/v1/interventions",
        headers=board,
        json={
            "agent": "eng",
            "issue": "PAP-1",
            "kind": "model",
            "reason": "cheaper model",
            "effective_at": "2026-11-02T00:00:00Z",
            "details": {"to": "claude-haiku-4-5"},
        },
    ).json()
    assert intervention["issue_id"] == issue_id and intervention["status"] == "active"
    ended = client.patch(
        f"/v1/interventions/{intervention['id']}",
        headers=board,
        json={"status": "ended", "ended_at": "2026-11-09T00:00:00Z"},
    ).json()
    assert ended["status"] == "ended"

    rubric = client.post(
        "/v1/evaluation-rubrics",
        headers=board,
        json={"name": "quality", "criteria": {"scale": [1, 5]}},
    ).json()
    again = client.post(
        "/v1/evaluation-rubrics", headers=board, json={"name": "quality", "criteria": {}}
    )
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    annotation = client.post(
        "/v1/annotations",
        headers=board,
        json={
            "target_type": "issue",
            "target_id": issue_id,
            "rubric_id": rubric["id"],
            "score": "4",
            "comment": "solid",
        },
    ).json()
    assert annotation["annotator"].startswith("api_key:")
    wrong_target = client.post(
        "/v1/annotations", headers=board, json={"target_type": "heartbeat_run", "target_id": 999}
    )
    assert wrong_target.status_code == 422

    with psycopg.connect(conninfo) as conn:
        trail = conn.execute(
            """SELECT action, entity_type, before IS NOT NULL, after IS NOT NULL, actor_type
               FROM activity_log ORDER BY id"""
        ).fetchall()
        before_after = conn.execute(
            """SELECT before->>'amount', after->>'amount' FROM activity_log
               WHERE action = 'budget_policy.updated'"""
        ).fetchone()
    assert [row[0] for row in trail] == [
        "budget_policy.created",
        "budget_policy.updated",
        "price_override.created",
        "price_override.deleted",
        "intervention.created",
        "intervention.updated",
        "evaluation_rubric.created",
        "annotation.created",
    ]
    assert trail[3][2:4] == (True, False) and all(row[4] == "api_key" for row in trail)
    assert before_after == ("250.500000000000", "300.000000000000")


def test_a_price_override_that_may_never_apply_is_kept_with_a_warning(client, keys):
    board = auth(keys.board)
    post(client, "/v1/usage-events", keys.agent, [usage_record(1)])  # claude-sonnet-4-5
    missing = client.post(
        "/v1/price-overrides",
        headers=board,
        json={"provider": "anthropic", "model_pattern": "claude-sonet.*",
              "effective_from": "2026-11-01", "input_per_mtok": "1"},
    )  # fmt: skip
    assert missing.status_code == 201  # kept: it may be meant for usage still to come
    assert missing.json()["warnings"] == [
        "'claude-sonet.*' matches none of the 1 anthropic models with usage so far (the whole "
        "name must match), e.g. claude-sonnet-4-5"
    ]
    typo = client.post(
        "/v1/price-overrides",
        headers=board,
        json={"provider": "antropic", "model_pattern": "claude-sonnet.*",
              "effective_from": "2026-11-01", "input_per_mtok": "1"},
    ).json()  # fmt: skip
    assert "no usage is from provider 'antropic'" in typo["warnings"][0]
    assert (
        client.patch(
            f"/v1/price-overrides/{typo['id']}", headers=board, json={"note": "still a typo"}
        ).json()["warnings"]
        == typo["warnings"]
    )
    listed = client.get("/v1/price-overrides", headers=board).json()
    assert [row["warnings"] for row in listed] == [[], []]  # told when written, not stored


def test_a_price_override_names_the_materialised_days_it_leaves_as_they_were(
    client, keys, conninfo, tmp_path
):
    """Materialised days keep the costs they were priced at: the answer names those holding
    usage the override covers (of the caller's company), and the command that re-prices them."""
    from datetime import UTC, date, datetime

    import polars as pl

    from ingestion.warehouse.base import open_warehouse
    from schemas.warehouse import USAGE_PRICED

    with psycopg.connect(conninfo) as conn:
        acme = conn.execute("SELECT id FROM companies WHERE slug = 'acme'").fetchone()[0]

    def priced(day: date, company: int, model: str) -> dict:
        row = dict.fromkeys(USAGE_PRICED.column_names)
        row.update(day=day, event_id=day.day, company_id=company, source="api",
                   occurred_at=datetime(day.year, day.month, day.day, 9, tzinfo=UTC),
                   provider="anthropic", model=model, pricing_status="priced")  # fmt: skip
        return row

    rows = [
        priced(date(2026, 11, 2), acme, "claude-sonnet-4-5"),
        priced(date(2026, 11, 4), acme, "claude-sonnet-4-5"),
        priced(date(2026, 11, 5), acme, "claude-haiku-4-5"),  # another model
        priced(date(2026, 11, 6), acme + 1, "claude-sonnet-4-5"),
    ]  # another company
    frame = pl.DataFrame(rows, infer_schema_length=None).select(USAGE_PRICED.column_names)
    open_warehouse(f"duckdb://{tmp_path / 'warehouse.duckdb'}").replace_window(
        USAGE_PRICED, date(2026, 11, 1), date(2026, 11, 30), frame
    )  # fmt: skip
    post(client, "/v1/usage-events", keys.agent, [usage_record(1)])
    answer = client.post(
        "/v1/price-overrides",
        headers=auth(keys.board),
        json={"provider": "anthropic", "model_pattern": "claude-sonnet.*",
              "effective_from": "2026-11-01", "input_per_mtok": "1"},
    )  # fmt: skip
    assert answer.status_code == 201
    assert answer.json()["warnings"] == [
        "usage it covers is stored priced as before on 2 materialised days (2026-11-02 to "
        "2026-11-04); their costs change once re-materialised: tally materialize --from "
        "2026-11-02 --to 2026-11-04"
    ]
    narrowed = client.patch(f"/v1/price-overrides/{answer.json()['id']}",
                            headers=auth(keys.board),
                            json={"effective_to": "2026-11-03"})  # fmt: skip
    assert "on 1 materialised day (2026-11-02)" in narrowed.json()["warnings"][0]


def test_approval_decisions(client, keys, conninfo):
    with psycopg.connect(conninfo) as conn:
        company = conn.execute("SELECT id FROM companies WHERE slug = 'acme'").fetchone()[0]
        approval = conn.execute(
            """INSERT INTO approvals (company_id, kind, payload)
               VALUES (%s, 'budget_override_required', '{"policyId": 1}') RETURNING id""",
            (company,),
        ).fetchone()[0]
    board = auth(keys.board)
    pending = client.get("/v1/approvals?status=pending", headers=board).json()
    assert [a["id"] for a in pending] == [approval]
    decided = client.post(
        f"/v1/approvals/{approval}/decision",
        headers=board,
        json={"decision": "approved", "note": "raise it"},
    ).json()
    assert decided["status"] == "approved" and decided["decision_note"] == "raise it"
    twice = client.post(
        f"/v1/approvals/{approval}/decision", headers=board, json={"decision": "rejected"}
    )
    assert twice.status_code == 409
    agent = client.post(
        f"/v1/approvals/{approval}/decision",
        headers=auth(keys.agent),
        json={"decision": "rejected"},
    )
    assert agent.status_code == 403


def test_keys_cli_creates_lists_and_revokes(tally_env, conninfo):
    import orjson
    from typer.testing import CliRunner

    from ingestion.keys import authenticate
    from pipelines.cli.main import app

    runner = CliRunner()
    created = runner.invoke(
        app,
        [
            "keys",
            "create",
            "--company",
            "initech",
            "--agent",
            "bot",
            "--role",
            "agent",
            "--format",
            "json",
        ],
    )
    assert created.exit_code == 0, created.output
    # a misspelt company or agent must not pass unnoticed behind a key that sees nothing
    assert "created company 'initech' and agent 'bot' (new" in created.stderr
    # and that the logs and upstreams load into another company
    assert "load into company 'local' (TALLY_COMPANY)" in " ".join(created.stderr.split())
    key = orjson.loads(created.stdout)
    assert set(key) == {"id", "key"} and key["key"].startswith("tly_")
    with psycopg.connect(conninfo) as conn:
        caller = authenticate(conn, key["key"])
        stored = conn.execute("SELECT key_hash FROM api_keys").fetchone()[0]
    assert caller is not None and caller.role == "agent" and caller.agent_id is not None
    assert key["key"] not in stored  # only the digest is kept
    listed = orjson.loads(runner.invoke(app, ["keys", "list", "--format", "json"]).stdout)
    assert [(k["company"], k["agent"], k["role"]) for k in listed] == [("initech", "bot", "agent")]
    assert runner.invoke(app, ["keys", "revoke", str(key["id"])]).exit_code == 0
    with psycopg.connect(conninfo) as conn:
        assert authenticate(conn, key["key"]) is None
    as_csv = runner.invoke(app, ["keys", "create", "--company", "initech", "--role", "board",
                                 "--format", "csv"])  # fmt: skip
    header, row = as_csv.stdout.splitlines()
    assert "created" not in as_csv.stderr  # the company exists now
    assert header == "id,key" and row.split(",")[1].startswith("tly_")
    with psycopg.connect(conninfo) as conn:
        assert authenticate(conn, row.split(",")[1]).role == "board"
        conn.execute("DELETE FROM api_keys WHERE id = %s", (int(row.split(",")[0]),))
    missing_agent = runner.invoke(app, ["keys", "create", "--company", "x", "--role", "agent"])
    assert missing_agent.exit_code == 2 and "needs --agent" in missing_agent.output
    unknown = runner.invoke(app, ["keys", "revoke", "999999"])
    assert unknown.exit_code == 2
    for company, agent, said in (
        ("  ", "bot", "the company must not be blank"),
        ("a\tb", "bot", "the company 'a\\tb' contains control characters"),
        ("x", "b\x01", "the agent 'b\\x01' contains control characters"),
        ("x", "   ", "needs --agent"),
    ):
        refused = runner.invoke(
            app, ["keys", "create", "--company", company, "--role", "agent", "--agent", agent]
        )
        assert refused.exit_code == 2 and said in refused.output, (company, refused.output)
    with psycopg.connect(conninfo) as conn:  # nothing was created for them
        assert (
            conn.execute("SELECT count(*) FROM companies WHERE slug <> 'initech'").fetchone()[0]
            == 0
        )
    # a key of the company the logs load into needs no such note
    local = runner.invoke(app, ["keys", "create", "--company", "local", "--role", "board"])
    assert local.exit_code == 0 and "created company 'local'" in local.stderr
    assert "TALLY_COMPANY" not in local.stderr


def test_concurrent_batches_share_a_new_session_without_losing_an_event(keys, conninfo):
    """Two batches that create the same session at the same moment: one inserts it, the other
    finds it through its upsert (it was not in that statement's snapshot); both are kept."""
    import threading

    from api.batch import Outcome
    from api.records import UsageEventIn
    from api.writes import write_usage
    from ingestion.keys import authenticate

    with psycopg.connect(conninfo) as conn:
        caller = authenticate(conn, keys.service)
    assert caller is not None
    rounds, outcomes = 15, []

    def send(session: str, n: int, barrier: threading.Barrier) -> None:
        record = UsageEventIn.model_validate(usage_record(n, session=session))
        with psycopg.connect(conninfo, autocommit=True) as conn:
            outcome = Outcome(1)
            barrier.wait()
            write_usage(conn, caller, [(0, record)], outcome)
            outcomes.append(outcome.status[0])

    for round_ in range(rounds):
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=send, args=(f"race-{round_}", round_ * 2 + i, barrier))
                   for i in range(2)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert outcomes == ["accepted"] * (2 * rounds)
    assert count(conninfo, "token_usage_events") == 2 * rounds
    assert count(conninfo, "agent_sessions") == rounds


def test_a_busy_warehouse_answers_503_with_retry_after(client, keys, tmp_path, monkeypatch):
    from api import deps
    from tests.warehouse_helpers import hold

    monkeypatch.setattr(deps, "WAREHOUSE_WAIT_SECONDS", 0.3)
    holder = hold(tmp_path / "warehouse.duckdb", 20)
    try:
        response = client.get("/v1/costs", headers=auth(keys.board))
    finally:
        holder.kill()
        holder.wait()
    assert response.status_code == 503 and response.headers["retry-after"] == "30"
    body = response.json()
    assert body["error"] == "unavailable" and str(holder.pid) in body["message"]
    assert client.get("/v1/costs", headers=auth(keys.board)).status_code == 200


def test_an_unreadable_warehouse_answers_503_naming_the_file(client, keys, tmp_path):
    (tmp_path / "warehouse.duckdb").write_text("not a database")
    response = client.get("/v1/costs", headers=auth(keys.board))
    assert response.status_code == 503 and "retry-after" not in response.headers
    body = response.json()
    assert body["error"] == "unavailable"
    assert "warehouse.duckdb" in body["message"] and "not a valid DuckDB" in body["message"]


@pytest.mark.parametrize("interval", [0.0, 3600.0], ids=["due", "not-due"])
def test_usage_written_over_http_keeps_the_per_day_totals_folded(
    client, keys, conninfo, monkeypatch, interval
):
    """Each usage write appends its per-day changes; the API folds them now and then, so that
    an agent posting one request at a time does not leave the totals' readers a row per post."""
    import ingestion.usage_day_deltas as deltas
    from tests.ingest_helpers import day_totals_counted, day_totals_kept

    monkeypatch.setattr(deltas, "FOLD_INTERVAL_SECONDS", interval)
    monkeypatch.setattr(deltas, "_last_fold", 0.0)
    monkeypatch.setattr(deltas.time, "monotonic", lambda: 1800.0)  # 30 min after the last
    for n in range(5):
        assert post(client, "/v1/usage-events", keys.agent, [usage_record(n)]).status_code == 200
    assert day_totals_kept(conninfo) == day_totals_counted(conninfo)
    rows = count(conninfo, "usage_day_deltas")
    assert rows == (1 if interval == 0.0 else 5)
