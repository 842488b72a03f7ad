"""The `tally` command line against a real database: ingest, rejects, usage report."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
import pytest
from typer.testing import CliRunner

from ingestion.demo.corpus import generate_corpus
from pipelines.cli.main import app
from schemas.migrations import HEAD_REVISION
from tests.builders import assistant, usage, write_jsonl

runner = CliRunner()
CONTRACT_KEYS = {
    "source",
    "session_id",
    "day",
    "model",
    "requests",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "first_at",
    "last_at",
}


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def reported_sessions() -> list[str]:
    rows = orjson.loads(invoke("report", "usage", "--by", "session", "--format", "json").stdout)
    return sorted(row["session_id"] for row in rows)


def write_transcript(projects: Path, session: str) -> Path:
    """One session of one request in a Claude `projects` directory."""
    return write_jsonl(projects / "-w" / f"{session}.jsonl", [
        assistant(f"m_{session}", f"r_{session}", "2026-10-03T10:00:00Z", usage(), session=session),
    ])  # fmt: skip


def test_ingest_all_and_the_usage_report_contract(tally_env):
    corpus = generate_corpus(tally_env, megabytes=1, seed=2)
    result = invoke("ingest", "all")
    assert result.exit_code == 0, result.output
    for by, keys in (("session", {"source", "session_id"}), ("day", {"day"}), ("model", {"model"})):
        result = invoke("report", "usage", "--by", by, "--format", "json")
        assert result.exit_code == 0, result.output
        rows = orjson.loads(result.stdout)
        assert rows and all(set(row) <= CONTRACT_KEYS for row in rows)
        assert all(keys <= set(row) for row in rows)
        assert sum(row["requests"] for row in rows) == corpus.truth.totals()["requests"]
        assert sum(row["output_tokens"] for row in rows) == corpus.truth.totals()["output_tokens"]
    days = orjson.loads(invoke("report", "usage", "--by", "day", "--format", "json").stdout)
    one_day = days[3]["day"]
    only = orjson.loads(
        invoke(
            "report",
            "usage",
            "--by",
            "day",
            "--since",
            one_day,
            "--until",
            one_day,
            "--format",
            "json",
        ).stdout
    )
    assert only == [days[3]]
    csv = invoke("report", "usage", "--by", "model", "--format", "csv").stdout
    assert csv.splitlines()[0].startswith("model,requests,input_tokens")


def test_the_usage_report_can_read_new_lines_first(tally_env):
    projects = tally_env / "claude" / "projects"
    write_transcript(projects, "s1")
    assert invoke("ingest", "all").exit_code == 0
    write_transcript(projects, "s2")
    assert reported_sessions() == ["s1"]
    result = invoke("report", "usage", "--by", "session", "--format", "json", "--refresh")
    assert result.exit_code == 0, result.output
    assert sorted(row["session_id"] for row in orjson.loads(result.stdout)) == ["s1", "s2"]
    assert "1 files read" in " ".join(result.stderr.split())


def test_malformed_input_is_rejected_with_reasons_and_valid_records_load(tally_env):
    projects = tally_env / "claude" / "projects"
    good = [
        assistant(f"m{i}", f"r{i}", f"2026-10-03T10:00:0{i}Z", usage(output=10 + i))
        for i in range(3)
    ]
    huge_text = "x" * (20 * 1024 * 1024)  # a 20 MB line: a real, if enormous, response
    huge = assistant(
        "m_huge",
        "r_huge",
        "2026-10-03T10:05:00Z",
        usage(output=77),
        content=[{"type": "text", "text": huge_text}],
    )
    write_jsonl(
        projects / "p" / "s1.jsonl",
        [
            good[0],
            b'{"type":"assistant","message":{"id":"cut","usage":{"input_',  # truncated JSON
            b"this is not json",
            assistant("m_types", "r_types", "2026-10-03T10:00:09Z", usage(output="lots")),
            assistant("m_neg", "r_neg", "2026-10-03T10:00:09Z", usage(input_tokens=-3)),
            b"\x89PNG\r\n\x1a\n\x00\x00binary junk",
            b'[{"type":"assistant"}]',
            good[1],
            huge,
            good[2],
        ],
    )
    write_jsonl(projects / "p" / "empty.jsonl", [])
    (projects / "p" / "empty.jsonl").write_bytes(b"")
    result = invoke("ingest", "claude-code")
    assert result.exit_code == 0, result.output

    rejects = orjson.loads(invoke("rejects", "--format", "json").stdout)
    reasons = sorted(r["reason"] for r in rejects)
    assert len(rejects) == 8, reasons  # the binary junk holds two newlines: three lines
    assert sum(r.startswith("invalid JSON") for r in reasons) == 5
    assert "not a JSON object (a list)" in reasons
    assert any("output_tokens must be a non-negative integer, got 'lots'" in r for r in reasons)
    assert any("input_tokens must be a non-negative integer, got -3" in r for r in reasons)
    assert all(r["location"].endswith("s1.jsonl") and r["position"].isdigit() for r in rejects)

    rows = orjson.loads(invoke("report", "usage", "--by", "model", "--format", "json").stdout)
    assert rows[0]["requests"] == 4 and rows[0]["output_tokens"] == 10 + 11 + 12 + 77

    # a second run finds nothing new and records no reject twice
    assert invoke("ingest", "claude-code").exit_code == 0
    assert len(orjson.loads(invoke("rejects", "--format", "json").stdout)) == 8
    # --strict turns rejects into a failing exit code
    write_jsonl(projects / "p" / "s2.jsonl", [b"{broken"])
    strict = invoke("ingest", "claude-code", "--strict")
    assert strict.exit_code == 1
    # the summary names the run, whose rejects alone `--run` lists
    run = int(re.search(r"tally rejects --run (\d+)", strict.output).group(1))
    (latest,) = orjson.loads(invoke("rejects", "--run", str(run), "--format", "json").stdout)
    assert latest["location"].endswith("s2.jsonl") and latest["run_id"] == run
    assert orjson.loads(invoke("rejects", "--run", str(run - 1), "--format", "json").stdout) == []
    today = datetime.now(UTC).date()
    assert len(orjson.loads(invoke("rejects", "--since", today.isoformat(), "--format",
                                   "json").stdout)) == 9  # fmt: skip
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert orjson.loads(invoke("rejects", "--since", tomorrow, "--format", "json").stdout) == []


def test_implausible_counts_costs_and_times_are_rejected_and_the_rest_loads(tally_env):
    """Values the columns cannot hold (1e20 tokens failed the COPY of the whole batch) or
    Python cannot read back (a time in 1 BC broke every later report) are rejected alone."""
    projects = tally_env / "claude" / "projects"
    write_jsonl(
        projects / "p" / "s1.jsonl",
        [
            assistant("m1", "r1", "2026-10-03T10:00:00Z", usage(output=11)),
            assistant("m2", "r2", "2026-10-03T10:00:01Z", usage(input_tokens=1e20)),
            assistant("m3", "r3", "2026-10-03T10:00:02Z", usage(output=9 * 10**18)),
            assistant("m4", "r4", "2026-10-03T10:00:03Z", usage(), costUSD=1e15),
            assistant("m5", "r5", "0001-01-01T00:00:00+14:00", usage()),
            assistant("m6", "r6", "9999-12-31T23:59:59-10:00", usage()),
            assistant("m7", "r7", "2026-10-03T10:00:07Z", usage(output=13)),
        ],
    )
    calls = tally_env / "calls.jsonl"
    write_jsonl(
        calls,
        [
            {"tool": "t", "session": "s1", "started_at": "2026-10-03T10:00:00Z",
             "duration_ms": 7},
            {"tool": "t", "session": "s1", "started_at": "2026-10-03T10:00:01Z",
             "duration_ms": 10**11},
            {"tool": "t", "session": "s1", "started_at": "2099-12-31T23:59:59Z",
             "duration_ms": 5000},
        ],
    )  # fmt: skip
    assert invoke("ingest", "claude-code").exit_code == 0
    assert invoke("ingest", "tool-calls", "--path", str(calls)).exit_code == 0

    reasons = sorted(
        r["reason"] for r in orjson.loads(invoke("rejects", "--format", "json").stdout)
    )
    assert len(reasons) == 6, reasons
    assert "usage.input_tokens is 1e+20, above the limit of 1e+12" in reasons
    assert "usage.output_tokens is 9e+18, above the limit of 1e+12" in reasons
    assert "costUSD is 1e+15, not below the limit of 1e+12" in reasons
    assert sum("lies outside 2000-2099" in r for r in reasons) == 2
    assert "call.duration_ms is 1e+11, above the limit of 1e+10" in reasons
    rows = orjson.loads(invoke("report", "usage", "--by", "session", "--format", "json").stdout)
    assert [(r["requests"], r["output_tokens"]) for r in rows] == [(2, 24)]
    assert invoke("materialize").exit_code == 0


def test_an_oversize_line_is_rejected_without_loading_it(tally_env, monkeypatch):
    monkeypatch.setenv("TALLY_MAX_LINE_BYTES", "4096")
    from ingestion.settings import get_settings

    get_settings.cache_clear()
    projects = tally_env / "claude" / "projects"
    write_jsonl(
        projects / "p" / "s1.jsonl",
        [
            assistant(
                "m_big",
                "r_big",
                "2026-10-03T10:00:00Z",
                usage(),
                content=[{"type": "text", "text": "y" * 10_000}],
            ),
            assistant("m_ok", "r_ok", "2026-10-03T10:00:01Z", usage()),
        ],
    )
    assert invoke("ingest", "claude-code").exit_code == 0
    (reject,) = orjson.loads(invoke("rejects", "--format", "json").stdout)
    assert "exceeds the 4096-byte limit" in reject["reason"] and reject["position"] == "0"


def test_codex_archived_sessions_are_read_and_never_double_counted(tally_env):
    """Codex moves an archived conversation's rollout to `archived_sessions/`, beside
    `sessions/`: one archived before tally read it exists only there."""
    from tests.builders import codex_line, token_count

    def rollout(session: str, day: str) -> list[dict]:
        return [
            codex_line(f"{day}T04:00:00Z", "session_meta",
                       {"id": session, "cwd": "/w", "cli_version": "0.59.0", "source": "cli",
                        "model_provider": "openai"}),
            codex_line(f"{day}T04:00:01Z", "turn_context", {"cwd": "/w", "model": "gpt-5-codex"}),
            token_count(f"{day}T04:00:05Z", (1000, 200, 50, 10), (1000, 200, 50, 10)),
            token_count(f"{day}T04:01:05Z", (3000, 700, 90, 20), (2000, 500, 40, 10)),
        ]  # fmt: skip

    def name(session: str) -> str:
        return f"rollout-2026-10-03T04-00-00-{session}.jsonl"

    live, moved, archived = (f"{n}1111111-2222-4333-8444-555555555555" for n in "abc")
    codex = tally_env / "codex"
    write_jsonl(codex / "sessions" / "2026" / "10" / "03" / name(live), rollout(live, "2026-10-03"))
    write_jsonl(codex / "sessions" / "2026" / "10" / "03" / name(moved),
                rollout(moved, "2026-10-03"))  # fmt: skip
    assert invoke("ingest", "codex").exit_code == 0

    def sessions() -> dict[str, tuple[int, int]]:
        rows = orjson.loads(invoke("report", "usage", "--by", "session", "--format", "json").stdout)
        return {r["session_id"]: (r["requests"], r["output_tokens"]) for r in rows}

    assert sessions() == {live: (2, 90), moved: (2, 90)}
    # one rollout archived after it was read, one archived before tally ever saw it, and a
    # copy of a live one
    archive = codex / "archived_sessions"
    archive.mkdir()
    (codex / "sessions" / "2026" / "10" / "03" / name(moved)).rename(archive / name(moved))
    write_jsonl(archive / name(archived), rollout(archived, "2026-10-04"))
    write_jsonl(archive / name(live), rollout(live, "2026-10-03"))
    result = invoke("ingest", "codex")
    assert result.exit_code == 0, result.output
    assert "codex (codex/archived_sessions)" in result.output
    assert sessions() == {live: (2, 90), moved: (2, 90), archived: (2, 90)}
    assert invoke("ingest", "all").exit_code == 0
    assert sessions() == {live: (2, 90), moved: (2, 90), archived: (2, 90)}
    # CODEX_HOME given for its sessions/: the same directories, nothing new
    again = invoke("ingest", "codex", "--path", str(codex))
    assert again.exit_code == 0, again.output
    assert sessions() == {live: (2, 90), moved: (2, 90), archived: (2, 90)}


def test_claudes_home_given_for_its_projects_is_read_as_them(tally_env, monkeypatch):
    """~/.claude (a CLAUDE_CONFIG_DIR root) given where its projects/ belongs: read from the
    home, each transcript's project directory would be taken for its session."""
    from ingestion.settings import get_settings

    home = tally_env / "claude-home"
    for session in ("s-one", "s-two"):
        write_transcript(home / "projects", session)
    assert invoke("ingest", "claude-code", "--path", str(home)).exit_code == 0
    assert reported_sessions() == ["s-one", "s-two"]
    monkeypatch.setenv("TALLY_CLAUDE_DIR", str(home))
    get_settings.cache_clear()
    assert invoke("ingest", "all").exit_code == 0
    assert reported_sessions() == ["s-one", "s-two"]
    get_settings.cache_clear()


def test_every_claude_code_default_directory_is_read_once(tally_env, monkeypatch, tmp_path):
    """Claude Code versions write to ~/.config/claude/projects or ~/.claude/projects, and
    CLAUDE_CONFIG_DIR may list several roots: with TALLY_CLAUDE_DIR unset, every one that
    exists is read, and one directory reached by two paths only once."""
    from ingestion.settings import get_settings

    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("TALLY_CLAUDE_DIR")
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    get_settings.cache_clear()

    write_transcript(home / ".config" / "claude" / "projects", "xdg")
    write_transcript(home / ".claude" / "projects", "classic")
    result = invoke("ingest", "claude-code")
    assert result.exit_code == 0, result.output
    assert "claude-code (claude/projects)" in result.output  # ~/.config/claude's own row
    assert reported_sessions() == ["classic", "xdg"]
    (tmp_path / "alias").symlink_to(home / ".claude")
    write_transcript(tmp_path / "other" / "projects", "listed")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", f"{home / '.claude'},{tmp_path / 'alias'},"
                                            f"{tmp_path / 'other'}")  # fmt: skip
    get_settings.cache_clear()
    result = invoke("ingest", "all")
    assert result.exit_code == 0, result.output
    assert "alias" not in result.output and "other/projects" in result.output
    assert reported_sessions() == ["classic", "listed", "xdg"]
    get_settings.cache_clear()


def test_where_claude_transcripts_were_looked_for_names_every_default(monkeypatch, tmp_path):
    from ingestion.settings import TallySettings

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("TALLY_CLAUDE_DIR", raising=False)
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    settings = TallySettings()
    both = [tmp_path / ".claude" / "projects", tmp_path / ".config" / "claude" / "projects"]
    assert settings.claude_dirs == both[:1]  # none exists: the default, for the messages
    assert settings.claude_dirs_looked_in == both
    assert TallySettings(claude_dir=tmp_path / "mine").claude_dirs_looked_in == [tmp_path / "mine"]


def test_data_that_looks_like_rich_markup_is_printed_as_it_is(tally_env):
    """Square brackets in a path, a session or a rejected line are data: `[/]` crashed the
    tables and the error line, `[red]` vanished from them."""
    projects = tally_env / "odd[/]projects"
    write_transcript(projects, "s[red]2")
    (projects / "-w" / "broken.jsonl").write_bytes(b'{"type":"assistant","message":[/]\n')
    ingested = invoke("ingest", "claude-code", "--path", str(projects))
    assert ingested.exit_code == 0, ingested.output
    assert "s[red]2" in invoke("report", "usage", "--by", "session").stdout
    rejects = invoke("rejects")
    assert rejects.exit_code == 0 and "[/]" in rejects.stdout
    missing = invoke("ingest", "claude-code", "--path", str(tally_env / "gone[/]"))
    assert missing.exit_code == 2
    assert f"directory not found: {tally_env / 'gone[/]'}" in " ".join(missing.output.split())


def test_a_configured_log_file_is_read_like_a_path_to_one(tally_env, monkeypatch):
    from ingestion.settings import get_settings

    monkeypatch.setenv("TALLY_CLAUDE_DIR", str(write_transcript(tally_env / "one", "s-file")))
    get_settings.cache_clear()
    for command in (("ingest", "claude-code"), ("ingest", "all")):
        result = invoke(*command)
        assert result.exit_code == 0, result.output
    assert reported_sessions() == ["s-file"]
    get_settings.cache_clear()


def test_a_directory_without_logs_is_named(tally_env):
    (tally_env / "not-projects" / "notes").mkdir(parents=True)
    (tally_env / "not-projects" / "notes" / "readme.txt").write_text("no transcripts here")
    result = invoke("ingest", "claude-code", "--path", str(tally_env / "not-projects"))
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"warning: no log files (*.jsonl) under {tally_env / 'not-projects'}" in said


def test_a_missing_directory_fails_clearly(tally_env):
    result = invoke("ingest", "codex", "--path", str(tally_env / "nowhere"))
    assert result.exit_code == 2
    assert "codex directory not found" in result.output
    device = invoke("ingest", "tool-calls", "--path", "/dev/null")
    assert device.exit_code == 2
    assert "tool-calls: /dev/null is not a directory of logs" in device.output


@pytest.mark.parametrize(
    "command", [("ingest", "claude-code"), ("db", "status"), ("db", "upgrade")]
)
def test_an_unreachable_database_fails_clearly(tally_env, monkeypatch, command):
    from ingestion.postgres.embedded import free_port
    from ingestion.settings import get_settings

    monkeypatch.setenv(
        "TALLY_DATABASE_URL", f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x"
    )
    get_settings.cache_clear()
    result = invoke(*command)
    assert result.exit_code == 2
    assert "database unreachable" in result.output


@pytest.mark.parametrize(
    ("variable", "value", "command"),
    [
        ("TALLY_DATABASE_URL", "sqlite:///tally.db", ("report", "usage")),
        ("TALLY_DATABASE_URL", "127.0.0.1:5432/tally", ("db", "status")),
        ("TALLY_PAPERCLIP_URL", "mysql://paperclip@db/paperclip", ("ingest", "paperclip")),
    ],
)
def test_a_database_url_that_is_not_postgresql_is_refused(
    tally_env, monkeypatch, variable, value, command
):
    from ingestion.settings import get_settings

    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    result = invoke(*command)
    said = " ".join(result.output.split())
    assert result.exit_code == 2
    assert f"invalid setting: {variable}" in said and "is not a PostgreSQL URL" in said


def test_postgres_and_postgresql_urls_use_tallys_driver(tally_env, monkeypatch, db_url):
    from ingestion.settings import TallySettings, get_settings

    bare = db_url.split("://", 1)[1]
    for scheme in ("postgres", "postgresql"):
        assert TallySettings(database_url=f"{scheme}://{bare}").database_url == (
            f"postgresql+psycopg://{bare}"
        )
    # SQLAlchemy has no `postgres` dialect: the migrations read this URL too
    monkeypatch.setenv("TALLY_DATABASE_URL", f"postgres://{bare}")
    get_settings.cache_clear()
    result = invoke("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert HEAD_REVISION in result.output


def test_a_role_without_rights_on_the_tables_is_named(tally_env, monkeypatch, db_url):
    import uuid

    from sqlalchemy.engine import make_url

    from ingestion.settings import get_settings
    from tests.conftest import _admin

    role = f"tally_t_role_{uuid.uuid4().hex[:8]}"
    with _admin(db_url) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        monkeypatch.setenv("TALLY_DATABASE_URL", str(make_url(db_url).set(username=role)))
        get_settings.cache_clear()
        result = invoke("report", "usage")
    finally:
        with _admin(db_url) as conn:
            conn.execute(f'DROP ROLE "{role}"')
    said = " ".join(result.output.split())
    assert result.exit_code == 2
    assert "the database refused: permission denied for table alembic_version" in said


def test_an_invalid_setting_fails_clearly(tally_env, monkeypatch):
    from ingestion.settings import get_settings

    monkeypatch.setenv("TALLY_INGEST_BATCH_ROWS", "7")
    get_settings.cache_clear()
    result = invoke("ingest", "claude-code")
    assert result.exit_code == 2
    assert "invalid setting: TALLY_INGEST_BATCH_ROWS" in result.output


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TALLY_WAREHOUSE_URL", "clickhouse://localhost"),
        ("TALLY_PARTITIONS_START", "2024-13-01"),
        ("TALLY_COMPANY", "  "),
    ],
)
@pytest.mark.parametrize("command", [("report", "costs"), ("materialize",), ("serve",)])
def test_a_bad_warehouse_partition_or_company_setting_fails_before_any_work(
    tally_env, monkeypatch, variable, value, command
):
    from ingestion.settings import get_settings

    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    result = invoke(*command)
    assert result.exit_code == 2
    assert f"invalid setting: {variable}" in " ".join(result.output.split())


def test_a_file_system_error_is_one_line_naming_the_file(tmp_path, capsys):
    import typer

    from pipelines.cli.context import failures_reported

    with pytest.raises(typer.Exit) as exited, failures_reported():
        (tmp_path / "missing" / "x").read_text()
    assert exited.value.exit_code == 2
    said = " ".join(capsys.readouterr().err.split())
    assert said == f"error: No such file or directory ({tmp_path / 'missing' / 'x'})"


def test_a_database_that_answers_with_an_error_is_not_called_unreachable(capsys):
    """Operational errors with a SQLSTATE come from a server that was reached (a full disk,
    a limit): saying "unreachable" would send the operator to the network."""
    import psycopg
    import typer

    from pipelines.cli.context import failures_reported

    with pytest.raises(typer.Exit), failures_reported():
        raise psycopg.errors.DiskFull("could not extend file: No space left on device")
    said = " ".join(capsys.readouterr().err.split())
    assert said == (
        "error: the database could not do it: could not extend file: No space left on device "
        "(SQLSTATE 53100); the server ran out of disk, memory or connections: free some and "
        "run it again"
    )
    with pytest.raises(typer.Exit), failures_reported():
        raise psycopg.errors.AdminShutdown("terminating connection due to administrator command")
    said = " ".join(capsys.readouterr().err.split())
    assert said.endswith("(SQLSTATE 57P01); the server was shut down or restarted: run it again "
                         "once it is up")  # fmt: skip
    with pytest.raises(typer.Exit), failures_reported():
        raise psycopg.errors.LockNotAvailable("could not obtain lock")
    assert " ".join(capsys.readouterr().err.split()).endswith("(SQLSTATE 55P03)")
    with pytest.raises(typer.Exit), failures_reported():
        raise psycopg.OperationalError("connection refused")
    assert (
        " ".join(capsys.readouterr().err.split())
        == "error: database unreachable: connection refused"
    )


@pytest.mark.parametrize("command", [("report", "usage"), ("materialize",), ("db", "status")])
def test_a_data_dir_that_is_a_file_is_refused(tally_env, monkeypatch, tmp_path, command):
    from ingestion.settings import get_settings

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("TALLY_DATA_DIR", str(tmp_path / "a-file"))
    get_settings.cache_clear()
    result = invoke(*command)
    assert result.exit_code == 2
    assert f"invalid setting: TALLY_DATA_DIR: Value error, '{tmp_path / 'a-file'}' is not a" in (
        result.output
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--partition", "1999-12-31"), "1999-12-31 is outside the daily partitions"),
        (("--partition", "2999-01-01"), "2999-01-01 is outside the daily partitions"),
        (("--from", "2026-10-01", "--to", "2999-01-01"), "2999-01-01 is outside"),
        (("--from", "2026-10-02", "--to", "2026-10-01"), "--from 2026-10-02 is after --to"),
    ],
)
def test_materialize_refuses_days_outside_the_partitions(tally_env, arguments, message):
    result = invoke("materialize", *arguments)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ("usage_pricd", "--select 'usage_pricd' names an asset that does not exist"),
        ("group:finance", "--select 'group:finance' selects no daily asset"),
        ("token_usage_events", "--select 'token_usage_events' selects no daily asset"),
        ("usage_priced or", "--select 'usage_priced or' is not a selection"),
    ],
)
def test_materialize_refuses_a_selection_of_no_daily_asset(tally_env, selection, message):
    result = invoke("materialize", "--select", selection, "--partition", "2026-10-02")
    said = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert message in said and "Traceback" not in said
    assert "usage_priced, or a group: group:attribution, group:costs, group:pricing" in said


def test_materialize_says_which_usage_lies_before_the_partitions(tally_env, monkeypatch):
    from ingestion.settings import get_settings

    generate_corpus(tally_env, megabytes=0.3, seed=4, days=5)
    assert invoke("ingest", "all").exit_code == 0
    monkeypatch.setenv("TALLY_PARTITIONS_START", "2026-11-01")  # after the corpus
    get_settings.cache_clear()
    result = invoke("materialize")
    said = " ".join(result.output.split())
    assert result.exit_code == 2
    assert "day(s) of usage fall outside the daily partitions (2026-11-01 to" in said
    assert "no usage within the daily partitions" in said


def test_db_status_reports_the_revision(tally_env):
    result = invoke("db", "status")
    assert result.exit_code == 0, result.output
    assert "external" in result.output and HEAD_REVISION in result.output


@pytest.mark.parametrize("command", ["ui", "serve"])
@pytest.mark.parametrize("port", ["0", "70000"])
def test_a_port_outside_1_to_65535_is_refused(command, port):
    result = invoke(command, "--port", port)
    assert result.exit_code == 2
    assert "Invalid value for '--port'" in result.output


def test_serve_refuses_a_busy_port_or_an_unknown_host_before_starting(tally_env):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = invoke("serve", "--port", str(taken.getsockname()[1]))
    assert busy.exit_code == 2
    assert "is in use: choose another with --port" in " ".join(busy.output.split())
    unknown = invoke("serve", "--host", "no-such-host.invalid")
    assert unknown.exit_code == 2
    assert "cannot listen on no-such-host.invalid" in " ".join(unknown.output.split())


def test_demo_generate_writes_a_corpus_or_says_why_it_cannot(tmp_path):
    result = invoke("demo", "generate", "--out", str(tmp_path / "demo"), "--mb", "0.05")
    assert result.exit_code == 0, result.output
    assert list((tmp_path / "demo" / "claude" / "projects").rglob("*.jsonl"))
    (tmp_path / "a-file").write_text("")
    result = invoke("demo", "generate", "--out", str(tmp_path / "a-file" / "demo"))
    assert result.exit_code == 2
    assert f"cannot write under {tmp_path / 'a-file' / 'demo'}: Not a directory" in " ".join(
        result.output.split()
    )


def test_run_reports_costs_when_a_work_graph_source_cannot_be_read(tally_env, monkeypatch):
    from ingestion.settings import get_settings

    write_transcript(tally_env / "claude" / "projects", "s-run")
    (tally_env / "not-sqlite.db").write_text("a text file")
    monkeypatch.setenv("TALLY_PIGEON_DB", str(tally_env / "not-sqlite.db"))
    get_settings.cache_clear()
    result = invoke("run")
    said = " ".join(result.output.split())
    assert result.exit_code == 0, said
    assert f"warning: pigeon skipped: {tally_env / 'not-sqlite.db'} is not a readable" in said
    assert "HTML cost report" in said and "Traceback" not in said
    # the logs are read once: the usage report is not a second ingest (a typer default called
    # from Python is an OptionInfo, which is true)
    assert said.count("ingest") == said.count("ingest finished") == 1, said
    get_settings.cache_clear()


@pytest.mark.slow
def test_run_uses_demo_data_when_no_logs_exist(tally_env):
    result = invoke("run")
    assert result.exit_code == 0, result.output
    assert "using demo data" in result.output
    assert "token usage by model" in result.output and "cost by day" in result.output
    assert "HTML cost report" in result.output
    assert (tally_env / "data" / "reports" / "costs.html").exists()
    said = " ".join(result.output.split())
    assert "demo Pigeon board with" in said and "pigeon:" in said and ", 0 rejected" in said
    attributed = float(said.split("attribution: ")[1].split("%")[0])
    assert 50 < attributed < 100  # the demo board's cards cover most sessions
    tools = said.split("by tool: ")[1]  # both tools of the demo, each with its cost
    assert re.match(r"(claude_code|codex) \$[\d,]+\.\d\d \([\d,]+ requests\), "
                    r"(claude_code|codex) \$", tools)  # fmt: skip


@pytest.mark.parametrize(("cpus", "workers"), [(None, 1), (1, 1), (2, 2), (4, 4), (64, 4)])
def test_serve_runs_a_worker_per_cpu_up_to_four(monkeypatch, cpus, workers):
    # each worker holds up to 8 connections: 64 workers would exhaust PostgreSQL's 100
    from pipelines.cli import serve

    monkeypatch.setattr(serve.os, "cpu_count", lambda: cpus)
    assert serve.default_workers() == workers


def test_the_command_line_starts_without_heavy_imports():
    """Every command pays for what `tally` imports before parsing its arguments, and for what
    its failure handling imports: the heavy libraries load only in the commands that use
    them. Polars also starts threads, which must not exist in `tally ui` (a signal delivered
    to one of them would not interrupt its wait)."""
    import subprocess
    import sys

    heavy = ["sqlalchemy", "polars", "duckdb", "dagster", "pandas", "pyarrow", "fastapi"]
    probe = "\n".join([
        "import sys, pipelines.cli.main",
        "from pipelines.cli.context import failures_reported",
        "with failures_reported():",
        "    pass",
        f"print(' '.join(m for m in {heavy!r} if m in sys.modules))",
    ])  # fmt: skip
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::dagster.BetaWarning")
def test_a_failed_materialisation_says_why(tally_env, monkeypatch):
    from ingestion.settings import get_settings

    generate_corpus(tally_env, megabytes=0.2, seed=5, days=2)
    assert invoke("ingest", "all").exit_code == 0
    blocker = tally_env / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("TALLY_WAREHOUSE_URL", f"duckdb://{blocker / 'warehouse.duckdb'}")
    get_settings.cache_clear()
    result = invoke("materialize", "--partition", "2026-10-01")
    said = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "materialisation failed" in said
    assert "error: usage_priced: FileExistsError: [Errno 17] File exists:" in said, said
    assert "Traceback" not in said and "Stack Trace" not in said  # those stay in the run's log


def test_a_warehouse_under_a_file_names_the_file(tally_env, monkeypatch):
    """mkdir says "File exists" when a file stands where a directory must be."""
    from ingestion.settings import get_settings

    blocker = tally_env / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("TALLY_WAREHOUSE_URL", f"duckdb://{blocker / 'warehouse.duckdb'}")
    get_settings.cache_clear()
    result = invoke("report", "costs", "--by", "day")
    assert result.exit_code == 2
    assert f"error: {blocker} is not a directory" in " ".join(result.output.split())


@pytest.mark.parametrize("report", ["usage", "costs", "attribution"])
def test_a_report_window_that_ends_before_it_starts_is_refused(tally_env, report):
    result = invoke("report", report, "--since", "2026-10-05", "--until", "2026-10-01")
    assert result.exit_code == 2
    assert "--until 2026-10-01 is before --since 2026-10-05" in " ".join(result.output.split())


@pytest.mark.parametrize("report", ["usage", "costs", "attribution"])
def test_a_report_window_may_end_on_the_last_day_a_date_has(tally_env, report):
    """The day after --until bounds the window: on 9999-12-31 there is none in Python, and
    the usage report failed with a traceback."""
    result = invoke("report", report, "--since", "2026-10-01", "--until", "9999-12-31",
                    "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output


def test_command_summaries_read_as_sentences_in_the_help():
    """A docstring's hard line breaks must not survive into the command list: rich mode kept
    them, so `tally ingest --help` broke summaries in mid-phrase."""
    result = CliRunner().invoke(app, ["ingest", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "activity (with MCP session ids), git links" in result.output
    assert "start, duration, success, response size" in result.output


@pytest.mark.parametrize(
    "command",
    [
        ["report", "costs"],
        ["report", "costs", "--by", "issue"],
        ["report", "costs", "--format", "html"],
        ["report", "attribution"],
        ["report", "usage"],
        ["rejects"],
        ["prices", "list"],
        ["keys", "list"],
    ],
)
def test_read_commands_work_on_a_database_never_migrated(
    tally_env, pg_server_url, monkeypatch, command
):
    """A first command on a new database may be a report: it must set the schema up, not fail
    on a missing table (`report costs` did, once it compared the warehouse with the store)."""
    import uuid

    from sqlalchemy.engine import make_url

    from ingestion.settings import get_settings

    name = f"tally_empty_{uuid.uuid4().hex[:12]}"
    admin = make_url(pg_server_url).set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        monkeypatch.setenv("TALLY_DATABASE_URL", str(make_url(pg_server_url).set(database=name)))
        get_settings.cache_clear()
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
    finally:
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_console_script_keeps_its_status_its_output_and_its_exit_handlers(tally_env):
    """`main` ends the process without the interpreter's teardown: what a command printed
    still reaches a pipe whole, the exit status is the command's, and exit handlers the
    command registered still run."""
    import subprocess
    import sys

    def tally(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        probe = "\n".join([
            "import atexit, sys",
            "import pipelines.cli.main as cli",
            "command = cli.app",
            "def app():",  # a command that leaves an exit handler behind, as libraries do
            "    atexit.register(print, 'the handler ran')",  # into stdout's buffer
            "    command()",
            "cli.app = app",
            f"sys.argv = ['tally', *{list(args)!r}]",
            "cli.main()",
        ])  # fmt: skip
        buffered = {k: v for k, v in (env or os.environ).items() if k != "PYTHONUNBUFFERED"}
        return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              env=buffered, cwd=Path(__file__).parents[1])  # fmt: skip

    generate_corpus(tally_env, megabytes=0.5, seed=4)
    assert invoke("ingest", "all").exit_code == 0
    ok = tally("report", "usage", "--by", "session", "--format", "json")
    assert ok.returncode == 0, ok.stderr
    *report, handler = ok.stdout.splitlines()
    assert len(orjson.loads("\n".join(report))) == len(reported_sessions()) > 2
    assert handler == "the handler ran"  # run, and its output flushed
    misused = tally("report", "usage", "--by", "nothing")
    assert misused.returncode == 2 and "Invalid value" in misused.stderr
    away = {**os.environ, "TALLY_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:9/x"}
    unreachable = tally("report", "usage", env=away)
    assert unreachable.returncode == 2 and "database unreachable" in unreachable.stderr
    assert unreachable.stdout == "the handler ran\n"


def test_settings_come_from_tally_variables_of_any_case_and_arguments_win(monkeypatch, tmp_path):
    from pydantic import ValidationError

    from ingestion.settings import TallySettings

    for name in [key for key in os.environ if key.upper().startswith("TALLY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("tally_company", "acme")
    monkeypatch.setenv("TALLY_INGEST_BATCH_ROWS", "5000")
    monkeypatch.setenv("TALLY_NOT_A_SETTING", "ignored")
    monkeypatch.setenv("COMPANY", "not ours")
    settings = TallySettings(ingest_batch_rows=6000)
    assert settings.company == "acme" and settings.ingest_batch_rows == 6000
    assert "company" in settings.model_fields_set and "data_dir" not in settings.model_fields_set
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".data").write_text("")  # the default data directory is checked as well
    with pytest.raises(ValidationError, match="is not a directory"):
        TallySettings()


def test_a_database_migrated_by_a_newer_tally_is_named_not_a_traceback(tally_env, conninfo):
    """After a rollback of tally, the database may be at a revision this code has no migration
    for: every command printed Alembic's traceback."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0042_from_the_future'")
    status = invoke("db", "status")
    assert status.exit_code == 0 and "a newer tally migrated it" in status.output
    for command in (("db", "upgrade"), ("ingest", "claude-code"), ("report", "usage")):
        result = invoke(*command)
        said = " ".join(result.output.split())
        assert result.exit_code == 2, (command, result.output)
        assert "schema revision '0042_from_the_future', which this tally (head" in said
        assert "a newer tally has migrated it" in said and "Traceback" not in said
    with psycopg.connect(conninfo) as conn:  # left as it was
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (
            "0042_from_the_future",
        )
