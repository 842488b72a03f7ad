"""Ingestion into a real PostgreSQL: exact totals, idempotency, increments, crashes, races."""

from __future__ import annotations

import os
import random
import shutil
import string
from collections import defaultdict
from pathlib import Path

import orjson
import psycopg
import pytest

from ingestion.demo.corpus import generate_corpus
from ingestion.sources import CLAUDE_CODE, CODEX
from schemas.limits import MAX_PATH_BYTES
from tests.builders import assistant, codex_line, token_count, usage, write_jsonl
from tests.ingest_helpers import ingest, ingest_corpus, snapshot, totals_by_root_session
from tests.reference_count import claude_totals, codex_totals


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return generate_corpus(tmp_path_factory.mktemp("corpus"), megabytes=3, seed=11)


def test_totals_equal_ground_truth_and_an_independent_count(conninfo, corpus):
    ingest_corpus(conninfo, corpus.root)
    stored = totals_by_root_session(conninfo)
    truth = corpus.truth.by_session()
    assert set(stored) == set(truth)
    for key, expected in truth.items():
        assert {k: stored[key][k] for k in expected} == expected, key

    reference: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (session, _), row in claude_totals(corpus.claude_dir).items():
        for name, value in row.items():
            reference[("claude_code", session)][name] += value
    for (session, _), row in codex_totals(corpus.codex_dir).items():
        for name, value in row.items():
            reference[("codex", session)][name] += value
    for key, row in reference.items():
        got = stored[key]
        assert got["requests"] == row["requests"], key
        assert got["input_tokens"] == row["input_tokens"], key
        assert got["output_tokens"] == row["output_tokens"], key
        assert got["cache_read_tokens"] == row["cache_read_tokens"], key
        writes = got["cache_write_5m_tokens"] + got["cache_write_1h_tokens"]
        assert writes == row["cache_write_tokens"], key


def test_worker_processes_store_what_inline_parsing_stores(conninfo, corpus, pg_server_url):
    clean = snapshot_of_clean_run(pg_server_url, corpus)
    ingest_corpus(conninfo, corpus.root, batch_rows=500, workers=2)
    assert snapshot(conninfo) == clean


def test_each_tool_call_is_counted_new_once_however_batches_split_its_halves(conninfo, corpus):
    # small batches: many calls' tool_use and tool_result land in different batches
    summaries = ingest_corpus(conninfo, corpus.root, batch_rows=50)
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT count(*) FROM tool_calls").fetchone()
    assert row is not None and row[0] == corpus.truth.tool_calls
    assert sum(s.tool_calls_new for s in summaries) == corpus.truth.tool_calls
    assert sum(s.tool_calls_seen for s in summaries) > corpus.truth.tool_calls


def test_a_second_ingest_changes_nothing(conninfo, corpus):
    first = ingest_corpus(conninfo, corpus.root)
    before = snapshot(conninfo)
    second = ingest_corpus(conninfo, corpus.root)
    assert snapshot(conninfo) == before
    assert all(s.events_new == 0 and s.files_read == 0 for s in second)
    assert sum(s.files_unchanged for s in second) == sum(s.files_read for s in first)


def test_appended_lines_and_a_half_written_line(conninfo, tmp_path):
    path = tmp_path / "p" / "s1.jsonl"
    write_jsonl(path, [assistant("m1", "r1", "2026-10-03T10:00:00Z", usage(output=5))])
    ingest(conninfo, CLAUDE_CODE, tmp_path)
    line = (
        b'{"type":"assistant","sessionId":"s1","requestId":"r2","timestamp":"2026-10-03T10:01:00Z",'
    )
    rest = (
        b'"message":{"id":"m2","model":"claude-opus-4-6","usage":{"input_tokens":3,'
        b'"output_tokens":9}}}\n'
    )
    with open(path, "ab") as handle:  # the writer is mid-line
        handle.write(line)
    summary = ingest(conninfo, CLAUDE_CODE, tmp_path)
    assert summary.events_new == 0 and summary.rejects == 0
    with open(path, "ab") as handle:
        handle.write(rest)
    summary = ingest(conninfo, CLAUDE_CODE, tmp_path)
    assert summary.events_new == 1 and summary.bytes_read == len(line) + len(rest)
    stored = snapshot(conninfo)["usage"]
    assert [(row[1], row[7]) for row in stored] == [("m1", 5), ("m2", 9)]


def test_a_replaced_or_truncated_file_is_read_again(conninfo, tmp_path):
    path = tmp_path / "p" / "s1.jsonl"
    write_jsonl(
        path,
        [
            assistant("m1", "r1", "2026-10-03T10:00:00Z", usage()),
            assistant("m2", "r2", "2026-10-03T10:00:05Z", usage()),
        ],
    )
    ingest(conninfo, CLAUDE_CODE, tmp_path)
    replacement = tmp_path / "new.jsonl.tmp"
    write_jsonl(replacement, [assistant("m3", "r3", "2026-10-03T11:00:00Z", usage())])
    replacement.replace(path)  # shorter, and another inode
    summary = ingest(conninfo, CLAUDE_CODE, tmp_path)
    assert summary.events_new == 1
    write_jsonl(
        path,
        [
            assistant("m4", "r4", "2026-10-03T12:00:00Z", usage()),
            assistant("m5", "r5", "2026-10-03T12:00:01Z", usage()),
        ],
    )  # same inode
    summary = ingest(conninfo, CLAUDE_CODE, tmp_path)
    assert summary.events_new == 2
    assert [row[1] for row in snapshot(conninfo)["usage"]] == ["m1", "m2", "m3", "m4", "m5"]


@pytest.mark.parametrize("cursor", ["tail fingerprint", "from before tail fingerprints"])
def test_a_file_rewritten_in_place_past_its_head_is_read_again(conninfo, tmp_path, cursor):
    """Same inode, the first 4 KB unchanged, a line after them changed and the file longer
    than the offset (a script filtering a transcript through open(path, "w")): the run
    started mid-line, rejected the fragment and lost the request it cut."""
    path = tmp_path / "p" / "s1.jsonl"
    long_first = assistant("m1", "r1", "2026-10-03T10:00:00Z", usage())
    long_first["message"]["content"] = [{"type": "text", "text": "h" * 5000}]
    second = assistant("m2", "r2", "2026-10-03T10:00:05Z", usage())
    second["message"]["content"] = [{"type": "text", "text": "x" * 300}]
    write_jsonl(path, [long_first, second, assistant("m3", "r3", "2026-10-03T10:00:09Z", usage())])
    ingest(conninfo, CLAUDE_CODE, tmp_path)
    if cursor == "from before tail fingerprints":
        with psycopg.connect(conninfo) as conn:
            conn.execute("UPDATE ingestion_cursors SET tail_fingerprint = NULL")
    inode = path.stat().st_ino
    later = [assistant(f"m{n}", f"r{n}", f"2026-10-03T10:01:0{n}Z", usage()) for n in (4, 5)]
    later[0]["message"]["content"] = [{"type": "text", "text": "y" * 100}]
    write_jsonl(path, [long_first, assistant("m2", "r2", "2026-10-03T10:00:05Z", usage()),
                       assistant("m3", "r3", "2026-10-03T10:00:09Z", usage()), *later])  # fmt: skip
    assert path.stat().st_ino == inode
    summary = ingest(conninfo, CLAUDE_CODE, tmp_path)
    assert summary.rejects == 0 and summary.events_new == 2
    assert [row[1] for row in snapshot(conninfo)["usage"]] == ["m1", "m2", "m3", "m4", "m5"]
    # an append alone still resumes where the last run stopped
    write_jsonl(path, [assistant("m6", "r6", "2026-10-03T10:02:00Z", usage())], mode="ab")
    summary = ingest(conninfo, CLAUDE_CODE, tmp_path)
    assert summary.events_new == 1 and summary.events_merged == 0


@pytest.mark.parametrize("workers", [0, 2], ids=["inline", "worker-processes"])
def test_a_run_that_fails_midway_then_reruns_equals_a_clean_run(
    conninfo, corpus, db_url, pg_server_url, monkeypatch, workers
):
    import ingestion.loader as loader

    clean = snapshot_of_clean_run(pg_server_url, corpus)
    real_flush = loader.CanonicalLoader.flush
    calls = {"n": 0}

    def crashing_flush(self, batch, cursors):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("power cut")
        return real_flush(self, batch, cursors)

    monkeypatch.setattr(loader.CanonicalLoader, "flush", crashing_flush)
    with pytest.raises(RuntimeError, match="power cut"):
        ingest(conninfo, CLAUDE_CODE, corpus.claude_dir, batch_rows=200, workers=workers)
    monkeypatch.setattr(loader.CanonicalLoader, "flush", real_flush)
    ingest_corpus(conninfo, corpus.root, batch_rows=200, workers=workers)
    assert snapshot(conninfo) == clean


def snapshot_of_clean_run(pg_server_url, corpus):
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    from schemas.migrations.runner import upgrade

    name = f"tally_clean_{uuid.uuid4().hex[:10]}"
    admin = make_url(pg_server_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = str(make_url(pg_server_url).set(database=name))
        upgrade(url)
        conninfo = make_url(url).set(drivername="postgresql").render_as_string(False)
        ingest_corpus(conninfo, corpus.root)
        return snapshot(conninfo)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("workers", [0, 2], ids=["inline", "worker-processes"])
def test_runs_in_any_file_order_give_the_same_rows(
    conninfo, corpus, pg_server_url, tmp_path, workers
):
    # The merge is commutative: ingesting subagent files before their parents, or one
    # source directory in pieces, ends in the same rows.
    clean = snapshot_of_clean_run(pg_server_url, corpus)
    pieces = tmp_path / "pieces"
    for index, path in enumerate(sorted(corpus.claude_dir.rglob("*.jsonl"), reverse=True)):
        target = pieces / f"{index % 3}" / path.relative_to(corpus.claude_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    for part in ("2", "0", "1"):
        ingest(conninfo, CLAUDE_CODE, pieces / part, batch_rows=150, workers=workers)
    ingest(conninfo, CODEX, corpus.codex_dir, workers=workers)
    got = snapshot(conninfo)
    # file paths differ between the copies; compare everything else
    strip = lambda rows: [row[:16] for row in rows]  # noqa: E731
    assert strip(got["usage"]) == strip(clean["usage"])
    assert [row[:2] + row[3:] for row in got["tools"]] == [
        row[:2] + row[3:] for row in clean["tools"]
    ]


def test_a_session_description_does_not_depend_on_how_the_file_is_split(
    conninfo, tmp_path, pg_server_url
):
    # The first activity (a prompt without a cwd) and the earliest line naming a cwd fall in
    # different pieces when the file is read in small batches.
    prompt = {
        "type": "user",
        "sessionId": "s1",
        "timestamp": "2026-10-03T10:00:01Z",
        "message": {"role": "user", "content": "hi"},
    }
    lines: list = [prompt]
    for i in range(150):
        lines.append(
            assistant(
                f"m{i}",
                f"r{i}",
                f"2026-10-03T11:{i // 60:02d}:{i % 60:02d}Z",
                usage(),
                gitBranch="later-branch",
            )
        )
    lines.append(
        assistant(
            "m_early", "r_early", "2026-10-03T10:30:00Z", usage(), gitBranch="earliest-branch"
        )
    )
    write_jsonl(tmp_path / "p" / "s1.jsonl", lines)
    ingest(conninfo, CLAUDE_CODE, tmp_path, batch_rows=100)  # pieces of 100 records
    (session,) = [row for row in snapshot(conninfo)["sessions"] if row[1] == "s1"]
    assert session[6] == "earliest-branch"


def test_a_file_held_by_a_run_that_is_going_away_is_waited_for(conninfo, tmp_path, monkeypatch):
    import threading
    import time

    import psycopg

    import ingestion.runner as runner

    path = tmp_path / "p" / "s1.jsonl"
    write_jsonl(path, [assistant("m1", "r1", "2026-10-03T10:00:00Z", usage())])
    holder = psycopg.connect(conninfo, autocommit=True)  # a previous run's lingering lock
    holder.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"claude_code:{path}",))
    releaser = threading.Timer(1.0, holder.close)
    releaser.start()
    started = time.monotonic()
    summary = ingest(conninfo, CLAUDE_CODE, tmp_path)
    assert summary.events_new == 1 and summary.files_busy == 0
    assert time.monotonic() - started >= 0.9

    # held for longer than the wait: reported, and read by the next run
    write_jsonl(path, [assistant("m2", "r2", "2026-10-03T10:01:00Z", usage())], mode="ab")
    monkeypatch.setattr(runner, "BUSY_WAIT_SECONDS", 1)
    with psycopg.connect(conninfo, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"claude_code:{path}",))
        summary = ingest(conninfo, CLAUDE_CODE, tmp_path)
        assert summary.files_busy == 1 and summary.events_new == 0
    assert ingest(conninfo, CLAUDE_CODE, tmp_path).events_new == 1


def test_many_short_transcripts_hold_a_bounded_number_of_file_locks(
    conninfo, tmp_path, monkeypatch
):
    """Each file lock takes a slot of the server's shared lock table: 20,000 short sessions
    (a long-time user's projects directory) held until a batch filled exhausted it ("out of
    shared memory") and the run failed, storing nothing."""
    import ingestion.loader as loader
    import ingestion.runner as runner

    monkeypatch.setattr(runner, "MAX_LOCKED_FILES", 4)
    held: list[int] = []
    take_locks = loader.CanonicalLoader.try_lock_files

    def counted(self, paths):
        granted = take_locks(self, paths)
        (locks,) = self.conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        ).fetchone()
        held.append(locks)
        return granted

    monkeypatch.setattr(loader.CanonicalLoader, "try_lock_files", counted)
    for n in range(60):
        line = assistant(f"m{n}", f"r{n}", "2026-10-03T10:00:00Z", usage(), session=f"s{n}")
        write_jsonl(tmp_path / "p" / f"s{n}.jsonl", [line])
    summary = ingest(conninfo, CLAUDE_CODE, tmp_path, batch_rows=100_000)
    assert summary.events_new == 60 and summary.files_read == 60
    assert len(held) == 15 and max(held) <= 2 * 4, held


def test_a_dead_run_is_marked_interrupted_without_reading_every_run(conninfo, tmp_path):
    """Each ingest first marks the runs whose process is gone as interrupted; the sensor
    starts a run a minute, and that statement read all of them (0.1 s a run after a year)."""
    from ingestion.loader import MARK_INTERRUPTED_RUNS

    with psycopg.connect(conninfo) as conn:
        conn.execute(
            """INSERT INTO ingestion_runs (source, started_at, status, arguments, pid)
               SELECT 'claude_code', now(), 'succeeded', '{}', 1
               FROM generate_series(1, 20000)"""
        )
        conn.execute(
            """INSERT INTO ingestion_runs (source, started_at, status, arguments, pid)
               VALUES ('claude_code', now(), 'running', '{}', 2147483647)"""
        )
        conn.execute("ANALYZE ingestion_runs")
    write_jsonl(tmp_path / "p" / "s1.jsonl",
                [assistant("m1", "r1", "2026-10-03T10:00:00Z", usage())])  # fmt: skip
    assert ingest(conninfo, CLAUDE_CODE, tmp_path).events_new == 1
    with psycopg.connect(conninfo) as conn:
        statuses = dict(conn.execute(
            "SELECT status, count(*) FROM ingestion_runs GROUP BY status").fetchall())  # fmt: skip
        plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {MARK_INTERRUPTED_RUNS}"))
    assert statuses == {"succeeded": 20001, "interrupted": 1}
    assert "ix_ingestion_runs_running" in plan, plan


def test_a_spawn_tree_read_from_the_bottom_up_roots_every_level_at_the_top(conninfo, tmp_path):
    """A grandchild rollout read first, then its parent, then the grandparent (one run each):
    each run re-roots what it has already stored under the newly known ancestor."""
    from tests.builders import codex_line, token_count
    from tests.test_adapter_codex import meta, rollout_path, turn

    threads = ["aaaaaaaa-0000-4000-8000-000000000001", "aaaaaaaa-0000-4000-8000-000000000002",
               "aaaaaaaa-0000-4000-8000-000000000003"]  # fmt: skip
    root = tmp_path / "sessions"

    def rollout(thread: str, parent: str | None, minute: int) -> None:
        at = f"2026-10-03T10:{minute:02d}:00.000Z"
        write_jsonl(rollout_path(root, thread), [
            meta(at, thread, parent), turn(at, "gpt-5-codex"),
            token_count(at, (100, 0, 10, 0), (100, 0, 10, 0)),
            codex_line(at, "event_msg", {"type": "agent_message", "message": "done"}),
        ])  # fmt: skip

    def roots() -> dict[str, str | None]:
        with psycopg.connect(conninfo) as conn:
            rows = conn.execute("""SELECT s.session_key, r.session_key FROM agent_sessions s
                                   LEFT JOIN agent_sessions r ON r.id = s.root_session_id""")
            return dict(rows.fetchall())

    rollout(threads[2], threads[1], 3)
    ingest(conninfo, CODEX, root)
    assert roots() == {threads[2]: threads[1], threads[1]: threads[1]}
    rollout(threads[1], threads[0], 2)
    ingest(conninfo, CODEX, root)
    assert roots() == dict.fromkeys(threads, threads[0])
    rollout(threads[0], None, 1)
    ingest(conninfo, CODEX, root)
    assert roots() == dict.fromkeys(threads, threads[0])


def test_an_append_to_big_files_counts_its_new_bytes_and_is_read_inline(
    conninfo, tmp_path, monkeypatch
):
    """A run sizes its work by the bytes after each file's cursor, not by whole files: a
    refresh of a few new lines in long transcripts must not start worker processes."""
    from ingestion.runner import IngestRun

    root = tmp_path / "projects"
    for name in ("big-1", "big-2"):
        write_jsonl(root / "-w" / f"{name}.jsonl", [
            assistant(f"m_{name}_{i}", f"r_{name}_{i}", f"2026-10-03T10:{i:02d}:00Z", usage(),
                      session=name) for i in range(40)
        ])  # fmt: skip

    def run(listener: object | None = None):
        return IngestRun(conninfo, CLAUDE_CODE, root, company="local", batch_rows=20_000,
                         max_line_bytes=1 << 20, workers=2, parallel_min_bytes=4096,
                         listener=listener).run()  # fmt: skip

    assert run().events_new == 80  # whole files of more than 4 KB: worker processes
    appended = 0
    for name in ("big-1", "big-2"):
        path = root / "-w" / f"{name}.jsonl"
        before = path.stat().st_size
        write_jsonl(path, [assistant(f"m_{name}_new", f"r_{name}_new", "2026-10-03T11:00:00Z",
                                     usage(), session=name)], mode="ab")  # fmt: skip
        appended += path.stat().st_size - before
    assert appended < 4096 < (root / "-w" / "big-1.jsonl").stat().st_size

    def no_workers(*args: object, **kwargs: object) -> None:
        raise AssertionError("worker processes started for a few new lines")

    monkeypatch.setattr("ingestion.runner.ProcessPoolExecutor", no_workers)
    seen: list[tuple[int, int]] = []
    listener = type("Listener", (), {
        "discovered": lambda self, files, total: seen.append((files, total)),
        "advanced": lambda self, files, bytes_read, events: None,
    })()  # fmt: skip
    summary = run(listener)
    assert summary.events_new == 2
    assert seen == [(2, appended)]


T_NUL = "2026-10-03T10:00:00.000Z"


def test_nul_characters_in_a_rollout_are_dropped_not_fatal(conninfo, tmp_path):
    """PostgreSQL text and jsonb hold no NUL: a Codex rollout whose ids, model and provider
    carry one (the parser's state, stored with the cursor, is JSON) loads without them."""
    session = "11111111-2222-4333-8444-555555555555"
    meta = codex_line(
        T_NUL,
        "session_meta",
        {
            "id": f"{session}\x00",
            "timestamp": T_NUL,
            "cwd": "/src\x00",
            "source": "cli",
            "model_provider": "open\x00ai",
        },
    )
    write_jsonl(
        tmp_path / "2026" / "10" / "03" / f"rollout-2026-10-03T04-00-00-{session}.jsonl",
        [meta, codex_line(T_NUL, "turn_context", {"cwd": "/src", "model": "gpt-5\x00-codex"}),
         token_count(T_NUL, (1000, 800, 300, 100), (1000, 800, 300, 100))],
    )  # fmt: skip
    summary = ingest(conninfo, CODEX, tmp_path)
    assert summary.events_new == 1 and summary.rejects == 0
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            """SELECT s.session_key, s.project_path, e.provider, e.model
               FROM token_usage_events e JOIN agent_sessions s ON s.id = e.session_id"""
        ).fetchone()
        state = conn.execute("SELECT state->>'model' FROM ingestion_cursors").fetchone()
    assert row == (session, "/src", "openai", "gpt-5-codex")
    assert state == ("gpt-5-codex",)


def _noise(length: int, seed: int) -> str:
    """Text that does not compress: PostgreSQL indexes a long repetitive value compressed."""
    return "".join(random.Random(seed).choices(string.ascii_letters + string.digits, k=length))


def test_ids_too_long_to_index_reject_their_record_and_the_batch_loads(conninfo, tmp_path):
    """An id or tool name longer than MAX_KEY_CHARS is refused with the reason: stored, it
    would exceed an index entry's 2,704 bytes and fail the COPY of its whole batch. A tool
    call's refusal costs its block, not the response's usage."""
    long_tool = {"type": "tool_use", "id": "toolu_" + _noise(5000, 1), "name": "Bash",
                 "input": {}}  # fmt: skip
    write_jsonl(
        tmp_path / "p" / "s1.jsonl",
        [assistant(_noise(5000, 2), "r1", T_NUL, usage()),
         assistant("m2", _noise(5000, 3), T_NUL, usage()),
         assistant("m3", "r3", T_NUL, usage(), content=[long_tool]),
         assistant("m4", "r4", T_NUL, usage(), content=[{**long_tool, "id": "toolu_4",
                                                         "name": _noise(400, 4)}]),
         assistant("ok", "ok", T_NUL, usage())],
    )  # fmt: skip
    summary = ingest(conninfo, CLAUDE_CODE, tmp_path)
    assert summary.events_new == 3 and summary.rejects == 4
    with psycopg.connect(conninfo) as conn:
        reasons = [r for (r,) in conn.execute("SELECT reason FROM ingestion_rejects ORDER BY id")]
        stored = conn.execute("SELECT count(*) FROM tool_calls").fetchone()
    block = "content[0] (tool_use) refused, the rest of the line kept: "
    assert reasons == [
        "message.id is 5,000 characters long; ids and names have at most 300",
        "requestId is 5,000 characters long; ids and names have at most 300",
        block + "tool_use.id is 5,006 characters long; ids and names have at most 300",
        block + "tool_use.name is 400 characters long; ids and names have at most 300",
    ]
    assert stored == (0,)


def test_a_file_whose_name_is_not_utf8_is_rejected_and_the_others_load(conninfo, tmp_path):
    """Such a name comes from the file system with surrogate escapes, which PostgreSQL text
    cannot hold (it made the whole run fail): the file is named in a reject, once."""
    write_jsonl(tmp_path / "p" / "good.jsonl", [assistant("m1", "r1", T_NUL, usage())])
    bad = os.path.join(os.fsencode(tmp_path / "p"), b"bad\xff.jsonl")
    with open(bad, "wb") as handle:
        handle.write(orjson.dumps(assistant("m2", "r2", T_NUL, usage())) + b"\n")
    first = ingest(conninfo, CLAUDE_CODE, tmp_path)
    again = ingest(conninfo, CLAUDE_CODE, tmp_path)
    assert (first.events_new, first.rejects, first.files_read) == (1, 1, 1)
    assert again.events_new == 0
    with psycopg.connect(conninfo) as conn:
        rejects = conn.execute(
            "SELECT location, position, reason FROM ingestion_rejects"
        ).fetchall()
    assert rejects == [(
        f"{tmp_path / 'p'}/bad\ufffd.jsonl", "file",
        "the file name is not valid UTF-8, which the store cannot keep: rename the file to read it",
    )]  # fmt: skip


def test_a_path_too_long_to_index_is_rejected_and_the_others_load(conninfo, tmp_path):
    """A path keys its file's cursor, in an index whose entries hold 2,704 bytes: longer than
    MAX_PATH_BYTES (Linux allows 4,096), the file is named in a reject, once, and skipped
    (it made the whole run fail); a path at the limit loads."""
    root = tmp_path / "p"

    def nested(total_bytes: int, seed: int) -> Path:
        path, index = root, 0
        while len(os.fsencode(path)) < total_bytes - 300:
            path = path / _noise(200, seed * 100 + index)
            index += 1
        name = _noise(total_bytes - len(os.fsencode(path)) - len("/.jsonl"), seed)
        return path / f"{name}.jsonl"

    at_limit, too_long = nested(MAX_PATH_BYTES, 1), nested(MAX_PATH_BYTES + 1, 2)
    longest = nested(4000, 3)  # Linux allows 4,096: too long to key the reject too
    assert [len(os.fsencode(p)) for p in (at_limit, too_long, longest)] == [
        MAX_PATH_BYTES, MAX_PATH_BYTES + 1, 4000
    ]  # fmt: skip
    write_jsonl(at_limit, [assistant("m1", "r1", T_NUL, usage())])
    write_jsonl(too_long, [assistant("m2", "r2", T_NUL, usage())])
    write_jsonl(longest, [assistant("m3", "r3", T_NUL, usage())])
    first = ingest(conninfo, CLAUDE_CODE, tmp_path)
    again = ingest(conninfo, CLAUDE_CODE, tmp_path)
    assert (first.events_new, first.rejects, first.files_read) == (1, 2, 1)
    assert (again.events_new, again.files_unchanged) == (0, 1)
    with psycopg.connect(conninfo) as conn:
        rejects = conn.execute(
            "SELECT location, position, reason, excerpt FROM ingestion_rejects ORDER BY reason"
        ).fetchall()

    def reason(length: int) -> str:
        return (
            f"the path is {length:,} bytes long; the store keeps paths of at most "
            f"{MAX_PATH_BYTES:,}: move the file nearer the root to read it"
        )

    for (location, position, why, excerpt), path in zip(rejects, (too_long, longest), strict=True):
        assert (position, why, excerpt) == ("file", reason(len(str(path))), str(path))
        # named by its head and tail, short enough to key the reject
        head, tail = location.split("…")
        assert len(location.encode()) <= MAX_PATH_BYTES
        assert str(path).startswith(head) and str(path).endswith(tail)


def test_a_file_of_junk_records_its_first_rejects_and_counts_the_rest_in_one_row(
    conninfo, tmp_path, monkeypatch
):
    """A junk file among the transcripts made a reject row per line: 21 MB of junk lines,
    500,000 rows and 258 MB of table. Now a run records the first rejects of a file one by
    one and counts the rest in one row; the run still counts them all, the transcripts
    beside it load, and a junk file that grows gets its own rows in the next run."""
    import ingestion.reject_limit as reject_limit

    monkeypatch.setattr(reject_limit, "MAX_RECORDED_PER_FILE", 5)
    junk = tmp_path / "p" / "junk.jsonl"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"".join(b"not json %d\n" % n for n in range(40)) + b"[1, 2]\n")
    good = [assistant("m1", "r1", "2026-10-03T10:00:00Z", usage())]
    write_jsonl(tmp_path / "p" / "s1.jsonl", good)
    summary = ingest(conninfo, CLAUDE_CODE, tmp_path, batch_rows=7)  # several batches
    assert summary.rejects == 41 and summary.events_new == 1

    def stored():
        with psycopg.connect(conninfo) as conn:
            return conn.execute(
                "SELECT position, reason FROM ingestion_rejects ORDER BY id"
            ).fetchall()

    rows = stored()
    assert [position for position, _ in rows[:5]] == ["0", "11", "22", "33", "44"]
    assert len(rows) == 6
    position, reason = rows[5]
    assert position == "55"  # the first one not recorded
    assert reason.startswith("36 more records of this file were rejected in this run, from "
                             "position 55 to 470")  # fmt: skip
    assert "not a JSON object (a list) (1)" in reason and "invalid JSON" in reason
    with psycopg.connect(conninfo) as conn:
        (counted,) = conn.execute("SELECT rejects FROM ingestion_runs").fetchone()
    assert counted == 41

    with open(junk, "ab") as handle:
        handle.write(b"".join(b"more junk %d\n" % n for n in range(8)))
    assert ingest(conninfo, CLAUDE_CODE, tmp_path).rejects == 8
    assert len(stored()) == 6 + 5 + 1


def test_a_file_deleted_after_the_listing_is_no_reject(conninfo, tmp_path, monkeypatch):
    """Claude Code deletes old transcripts: one gone between the run's listing and its read
    is not bad input (`--strict` would fail the run on it); the others load."""
    import ingestion.runner as runner

    good = write_jsonl(tmp_path / "p" / "good.jsonl", [assistant("m1", "r1", T_NUL, usage())])
    gone = write_jsonl(tmp_path / "p" / "gone.jsonl", [assistant("m2", "r2", T_NUL, usage())])
    listed = runner.walk_jsonl(tmp_path)
    gone.unlink()
    monkeypatch.setattr(runner, "walk_jsonl", lambda root: listed)
    summary = ingest(conninfo, CLAUDE_CODE, tmp_path)
    assert (summary.events_new, summary.rejects) == (1, 0)
    assert good.exists()


def test_a_log_that_cannot_be_told_from_a_link_loop_is_a_reject_not_the_end(conninfo, tmp_path):
    """A symlink loop named `*.jsonl` ended the whole run ("Too many levels of symbolic
    links") before any file was read. A FIFO or a directory so named is no log: passed over
    (opening a FIFO would wait for a writer for ever)."""
    import os

    good = write_jsonl(tmp_path / "p" / "good.jsonl", [assistant("m1", "r1", T_NUL, usage())])
    loop = good.parent / "loop.jsonl"
    loop.symlink_to(loop)
    os.mkfifo(good.parent / "fifo.jsonl")
    (good.parent / "dir.jsonl").mkdir()
    first = ingest(conninfo, CLAUDE_CODE, tmp_path)
    assert (first.events_new, first.rejects) == (1, 1)
    with psycopg.connect(conninfo) as conn:
        rejects = conn.execute("SELECT location, reason FROM ingestion_rejects").fetchall()
    assert rejects == [(str(loop), "cannot open: Too many levels of symbolic links")]
    again = ingest(conninfo, CLAUDE_CODE, tmp_path)
    assert again.events_new == 0
    with psycopg.connect(conninfo) as conn:  # one reject however many runs meet it
        assert conn.execute("SELECT count(*) FROM ingestion_rejects").fetchone()[0] == 1


def test_the_cursors_of_files_gone_are_dropped_and_what_they_held_stays(
    conninfo, tmp_path, monkeypatch
):
    """Claude Code deletes transcripts after 30 days; their cursors stayed, and every run
    loaded them all: a year of deleted transcripts made a no-change run 0.5 s slower. A
    directory that cannot be listed says nothing of its files, and another root's files are
    not this run's to judge."""
    root = tmp_path / "projects"
    kept = write_jsonl(root / "p" / "kept.jsonl", [assistant("m1", "r1", T_NUL, usage())])
    gone = write_jsonl(root / "p" / "gone.jsonl", [assistant("m2", "r2", T_NUL, usage())])
    hidden = write_jsonl(root / "q" / "hidden.jsonl", [assistant("m3", "r3", T_NUL, usage())])
    other = write_jsonl(tmp_path / "other" / "x.jsonl", [assistant("m4", "r4", T_NUL, usage())])
    ingest(conninfo, CLAUDE_CODE, root)
    ingest(conninfo, CLAUDE_CODE, tmp_path / "other")
    gone.unlink()
    scandir = os.scandir

    def unreadable_q(path):
        if str(path) == str(hidden.parent):
            raise PermissionError(13, "Permission denied")
        return scandir(path)

    monkeypatch.setattr(os, "scandir", unreadable_q)
    import ingestion.loader

    # a large deletion is vacuumed at once (autovacuum may be off, as on these machines)
    monkeypatch.setattr(ingestion.loader, "VACUUM_AFTER_FORGETTING", 1)
    summary = ingest(conninfo, CLAUDE_CODE, root)
    assert (summary.files_gone, summary.events_new) == (1, 0)
    with psycopg.connect(conninfo) as conn:
        paths = {row[0] for row in conn.execute("SELECT path FROM ingestion_cursors")}
        stored = conn.execute("SELECT count(*) FROM token_usage_events").fetchone()[0]
        vacuumed = conn.execute("SELECT vacuum_count FROM pg_stat_user_tables "
                                "WHERE relname = 'ingestion_cursors'").fetchone()[0]  # fmt: skip
    assert paths == {str(kept), str(hidden), str(other)}
    assert stored == 4 and vacuumed == 1

    # a cursor written since the run started (another run read a file made after this run
    # listed its directory) is not dropped
    from ingestion.loader import CanonicalLoader, ensure_company

    with psycopg.connect(conninfo, autocommit=True) as conn:
        loader = CanonicalLoader(conn, ensure_company(conn, "local"), CLAUDE_CODE.name)
        run = loader.start_run({})
        conn.execute("UPDATE ingestion_runs SET started_at = now() - interval '1 hour' "
                     "WHERE id = %s", (run,))  # fmt: skip
        assert loader.forget_files([str(kept)]) == 0
        conn.execute("UPDATE ingestion_runs SET started_at = now() + interval '1 hour' "
                     "WHERE id = %s", (run,))  # fmt: skip
        assert loader.forget_files([str(kept)]) == 1


def test_a_directory_given_relative_is_stored_by_absolute_paths(conninfo, tmp_path, monkeypatch):
    """`tally ingest claude-code --path projects` keyed cursors and events by relative paths:
    the same files named absolutely (the configured directory), or from another directory,
    were read again as other files."""
    transcript = write_jsonl(tmp_path / "projects" / "p" / "s.jsonl",
                             [assistant("m1", "r1", T_NUL, usage())])  # fmt: skip
    monkeypatch.chdir(tmp_path)
    first = ingest(conninfo, CLAUDE_CODE, Path("projects"))
    assert (first.files_read, first.events_new) == (1, 1)
    again = ingest(conninfo, CLAUDE_CODE, tmp_path / "projects")
    assert (again.files_read, again.files_unchanged) == (0, 1)
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SELECT path FROM ingestion_cursors").fetchall() == [(str(transcript),)]
        assert conn.execute("SELECT source_path FROM token_usage_events").fetchall() == [
            (str(transcript),)
        ]
