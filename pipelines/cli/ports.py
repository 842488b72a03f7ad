"""Whether a server can listen where it is asked to, checked before anything starts, so that
`tally ui` and `tally serve` refuse a busy port or an unknown host in one line."""

from __future__ import annotations

import socket


def cannot_listen(host: str, port: int) -> str | None:
    """Why a server could not listen on host:port, or None when it could."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        return f"cannot listen on {host}: {error.strerror}"
    family, kind, _, _, address = addresses[0]
    with socket.socket(family, kind) as probe:
        # as servers bind: a port left in TIME_WAIT by a stopped server counts as free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == 98:  # EADDRINUSE
                return f"port {port} on {host} is in use: choose another with --port"
            return f"cannot listen on {host}:{port}: {error.strerror}"
    return None
