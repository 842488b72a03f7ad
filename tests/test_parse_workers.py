"""What a forked parse worker does with the descriptors it inherits."""

from __future__ import annotations

import os
import socket

import pytest

from ingestion.parse_workers import close_inherited_sockets


@pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked")
def test_a_worker_closes_inherited_sockets_and_keeps_its_pipes_and_stdio():
    """The parent's end keeps working: closing a descriptor says nothing to the peer."""
    parent_end, peer = socket.socketpair()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: exit 0 only if all went as it should
        closed = close_inherited_sockets()
        try:
            os.fstat(parent_end.fileno())
            os._exit(1)  # the socket is still open
        except OSError:
            pass
        os.fstat(read_end)
        os.fstat(1)
        os._exit(0 if closed >= 2 else 2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    parent_end.sendall(b"x")
    assert peer.recv(1) == b"x"
    for descriptor in (read_end, write_end):
        os.close(descriptor)
    parent_end.close()
    peer.close()
