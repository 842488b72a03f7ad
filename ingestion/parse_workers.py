"""The pool of processes that parse log files for an ingest run.

Workers are forked (they start at once and share the parent's imports), so each begins with a
copy of every file descriptor the run had open, its PostgreSQL connections included. Two
things follow, both handled as a worker starts:

- A copy of a connection's socket keeps the connection open on the server for as long as the
  worker lives. Were the run killed (SIGKILL, the OOM killer), the server would not see it go:
  its transaction, with the row and advisory locks it holds, would stay open, and the next
  run would wait on them for ever. Workers close every socket they inherited; they use none.
- A worker blocks on its task queue, whose pipe it holds both ends of: killed, the run leaves
  its workers waiting for ever. Each watches its parent and exits when the parent is gone.
"""

from __future__ import annotations

import multiprocessing
import os
import stat
import threading
import time
from concurrent.futures import ProcessPoolExecutor

ORPHAN_CHECK_SECONDS = 0.5


def parse_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_worker_started,
        initargs=(os.getpid(),),
    )


def _worker_started(parent: int) -> None:
    close_inherited_sockets()
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()


def close_inherited_sockets() -> int:
    """Close this process's socket descriptors (without a word to their peers: the parent's
    connections stay as they are); returns how many. The task and result queues are pipes.
    Standard input and output are left alone even when they are sockets (systemd's journal):
    closed, their numbers would go to the next file opened."""
    try:
        descriptors = [int(name) for name in os.listdir("/dev/fd")]
    except OSError:  # no /dev/fd: nothing to find them by
        return 0
    closed = 0
    for descriptor in descriptors:
        if descriptor <= 2:
            continue
        try:
            if stat.S_ISSOCK(os.fstat(descriptor).st_mode):
                os.close(descriptor)
                closed += 1
        except OSError:  # the listing's own descriptor, already gone
            continue
    return closed


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_SECONDS)
    os._exit(1)
