"""A command's first step in a forked child: its effects, output and failures reach the command
as if it had run inline, and no child outlives the command."""

from __future__ import annotations

import io
import os
import signal
import sys
import time
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from pipelines.cli.background import in_background
from pipelines.cli.context import CommandFailed
from pipelines.cli.main import app

runner = CliRunner()


def test_what_the_step_writes_is_there_once_the_block_waits(tmp_path: Path) -> None:
    marker = tmp_path / "done"

    def step() -> None:
        time.sleep(0.2)
        marker.write_text("read")
        print("2 files read", file=sys.stderr)

    captured = io.StringIO()
    real_stderr = sys.stderr
    sys.stderr = captured  # no descriptor: the child's output comes through the pipe
    try:
        with in_background(step) as child:
            assert not marker.exists()  # the parent goes on meanwhile
            child.wait()
            assert marker.read_text() == "read"
    finally:
        sys.stderr = real_stderr
    assert captured.getvalue() == "2 files read\n"


def test_a_failing_step_fails_the_command_with_its_own_message(tmp_path: Path) -> None:
    def step() -> None:
        raise CommandFailed("the claude directory is a file")

    captured = io.StringIO()
    real_stderr = sys.stderr
    sys.stderr = captured
    try:
        with pytest.raises(typer.Exit) as exit, in_background(step) as child:
            child.wait()
    finally:
        sys.stderr = real_stderr
    assert exit.value.exit_code == 2
    assert "error: the claude directory is a file" in captured.getvalue()


def test_a_killed_step_is_a_failure_that_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    def step() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(typer.Exit) as exit, in_background(step, "the refresh") as child:
        child.wait()
    assert exit.value.exit_code == 1
    assert "the refresh was killed (signal 9)" in " ".join(capsys.readouterr().err.split())


def test_the_block_failing_still_waits_for_the_step(tmp_path: Path) -> None:
    marker = tmp_path / "done"

    def step() -> None:
        time.sleep(0.2)
        marker.write_text("read")

    with pytest.raises(RuntimeError), in_background(step):
        raise RuntimeError("the warehouse is busy")
    assert marker.read_text() == "read"  # its work was kept, not cut short


def test_an_interrupted_command_stops_the_step_and_leaves_no_child(tmp_path: Path) -> None:
    started = tmp_path / "started"

    def step() -> None:
        started.write_text("")
        time.sleep(30)

    with pytest.raises(KeyboardInterrupt), in_background(step) as child:
        while not started.exists():
            time.sleep(0.01)
        raise KeyboardInterrupt
    assert child.code == 130
    with pytest.raises(ChildProcessError):  # reaped: nothing left to wait for
        os.waitpid(child.pid or 0, os.WNOHANG)


def test_a_refresh_that_fails_fails_the_report(tally_env, monkeypatch) -> None:
    def refresh(context: object) -> None:
        raise CommandFailed("cannot read /logs: permission denied")

    monkeypatch.setattr("pipelines.cli.ingest.refresh_agent_logs", refresh)
    result = runner.invoke(app, ["report", "costs", "--format", "json", "--refresh"])
    assert result.exit_code == 2
    assert "cannot read /logs: permission denied" in result.stderr
    assert result.stdout == ""  # no report of a store the refresh did not bring up to date


def test_a_refresh_reports_what_an_inline_one_does(tally_env) -> None:
    from ingestion.demo.corpus import generate_corpus

    generate_corpus(tally_env, megabytes=0.2, seed=5, days=2)
    refreshed = runner.invoke(app, ["report", "costs", "--format", "json", "--refresh"])
    assert refreshed.exit_code == 0, refreshed.output
    assert "new events" in refreshed.stderr and "0 rejects" in refreshed.stderr
    again = runner.invoke(app, ["report", "costs", "--format", "json"])
    assert orjson.loads(refreshed.stdout) == orjson.loads(again.stdout) != []


def test_an_interruption_while_waiting_stops_the_step_cleanly(tmp_path: Path) -> None:
    """Ctrl-C while the parent copies the child's output: the child is stopped and reaped,
    and the half-read pipe is not read again."""
    started = tmp_path / "started"

    def step() -> None:
        print("reading", file=sys.stderr, flush=True)
        started.write_text("")
        time.sleep(30)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    captured, real_stderr = io.StringIO(), sys.stderr
    sys.stderr = captured  # through the pipe
    try:
        with pytest.raises(KeyboardInterrupt), in_background(step) as child:
            while not started.exists():
                time.sleep(0.01)
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            child.wait()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        sys.stderr = real_stderr
    assert child.code == 130 and child.relay is None
    assert captured.getvalue() == "reading\n"
