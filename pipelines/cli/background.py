"""A command's first step run in a forked child process while the command prepares the rest.

`tally report costs --refresh` reads the agent logs' new lines (a walk of every log file, the
store's cursors, the new lines loaded) while the report imports polars, DuckDB and the price
list and opens the warehouse, on the machine's other core: on a 1 GB corpus, 1.33 s became
1.10 s (medians of 8 alternating runs after 1 MB appended). What the report reads waits for
the child (`wait`), so it sees the same store as after an inline ingest.

The child writes to the command's own stdout and stderr when they are real files or
terminals, so that a progress bar stays live; when they are not (a test's captured streams)
its output goes through a pipe and the parent copies it, in order, when it waits."""

from __future__ import annotations

import codecs
import io
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TextIO

import typer

from pipelines.cli.context import err, failures_reported


class Background:
    """The child running the step; `wait` joins it and fails as the step would have."""

    def __init__(self, pid: int | None, relay: int | None, name: str = "the step") -> None:
        self.pid = pid  # None: the step already ran inline
        self.name = name
        self.relay = relay  # the read end of the child's output pipe, if it has one
        self.code: int | None = None if pid else 0

    def wait(self) -> None:
        """Wait for the step; exit with its status if it failed (it said why)."""
        if self.code is None:
            self._copy_relay()
            assert self.pid is not None
            _, status = os.waitpid(self.pid, 0)
            self.code = os.waitstatus_to_exitcode(status)
        if self.code is not None and self.code < 0 and self.code != -signal.SIGINT:
            err.print(f"[bold red]error:[/] {self.name} was killed (signal {-self.code})")
            raise typer.Exit(1)
        if self.code:
            raise typer.Exit(130 if self.code < 0 else self.code)

    def interrupt(self) -> None:
        """Stop the child (an interrupted ingest leaves nothing half-done) and reap it."""
        if self.code is None and self.pid is not None:
            with suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGINT)
            self._copy_relay()
            _, status = os.waitpid(self.pid, 0)
            self.code = os.waitstatus_to_exitcode(status)

    def _copy_relay(self) -> None:
        if self.relay is None:
            return
        # taken first: read once, and never again after an interruption closed it
        relay, self.relay = self.relay, None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with os.fdopen(relay, "rb") as pipe:
            for chunk in iter(lambda: pipe.read1(65536), b""):
                sys.stderr.write(decoder.decode(chunk))  # live, as the child writes
        sys.stderr.write(decoder.decode(b"", final=True))
        sys.stderr.flush()


@contextmanager
def in_background(step: Callable[[], None], name: str = "the step") -> Iterator[Background]:
    """Run `step` in a child process while the block runs; the block calls `wait` before it
    reads what the step writes. Leaving the block waits for the child in any case (or, on
    Ctrl-C, stops it), so no child outlives the command."""
    if not hasattr(os, "fork"):
        step()
        yield Background(None, None, name)
        return
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or the child would write the parent's buffered output again
    inherit = _has_descriptor(sys.stdout) and _has_descriptor(sys.stderr)
    read_end, write_end = (None, None) if inherit else os.pipe()
    pid = os.fork()
    if pid == 0:
        if read_end is not None:
            os.close(read_end)
        _run_child(step, write_end)
    if write_end is not None:
        os.close(write_end)
    child = Background(pid, read_end, name)
    try:
        yield child
    except KeyboardInterrupt:
        child.interrupt()
        raise
    finally:
        if child.code is None:
            with suppress(typer.Exit):  # the block's own failure is the one to report
                child.wait()


def _has_descriptor(stream: TextIO) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False
    return True


def _run_child(step: Callable[[], None], write_end: int | None) -> None:
    """The child: run the step, report a failure as the command would, exit with its code
    (never returning into the parent's code)."""
    code = 0
    try:
        if write_end is not None:
            relay = io.TextIOWrapper(os.fdopen(write_end, "wb"), encoding="utf-8",
                                     write_through=True)  # fmt: skip
            sys.stdout = sys.stderr = relay
        with failures_reported():
            try:
                step()
            except KeyboardInterrupt:
                code = 130  # the parent, interrupted too, says so once
    except typer.Exit as exit:
        code = exit.exit_code
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)
