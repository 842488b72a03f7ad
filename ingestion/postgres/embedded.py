"""A project-local PostgreSQL cluster: started on demand, reused while it runs.

The cluster lives in `<data_dir>/postgres`. PostgreSQL refuses to run as root, so as root the
server runs as the `postgres` system user (created by Debian's package); if that user cannot
reach the project directory (e.g. a checkout under a 0700 home), the cluster is kept under
/var/lib/tally and `<data_dir>/postgres/LOCATION` points to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ingestion.postgres.binaries import find_bin_dir

DATABASE_NAME = "tally"
SUPERUSER = "postgres"


class EmbeddedPostgresError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as_user() -> str | None:
    """The system user the server runs as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "tallypg"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "tallypg"],
        check=True,
    )
    return "tallypg"


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    data_dir: Path
    port: int | None
    url: str | None


class EmbeddedPostgres:
    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.root = root.expanduser().resolve()
        self.durable = durable
        self.user = _run_as_user()

    # -- locations -------------------------------------------------------------------------
    @property
    def cluster_dir(self) -> Path:
        pointer = self.root / "LOCATION"
        if pointer.exists():
            return Path(pointer.read_text().strip())
        return self.root / "cluster"

    @property
    def log_file(self) -> Path:
        return self.cluster_dir.parent / "server.log"

    def _command(self, args: list[str]) -> list[str]:
        if self.user is None:
            return args
        return ["runuser", "-u", self.user, "--", *args]

    def _user_can_reach(self, path: Path) -> bool:
        if self.user is None:
            return True
        probe = subprocess.run(
            ["runuser", "-u", self.user, "--", "test", "-w", str(path)], capture_output=True
        )
        return probe.returncode == 0

    # -- lifecycle -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _initdb(self) -> None:
        cluster = self.root / "cluster"
        if self.user is not None:
            shutil.chown(self.root, self.user, self.user)
            os.chmod(self.root, 0o700)
            if not self._user_can_reach(self.root):
                digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:12]
                outside = Path("/var/lib/tally") / f"pg-{digest}"
                outside.mkdir(parents=True, exist_ok=True)
                (self.root / "LOCATION").write_text(str(outside / "cluster"))
                cluster = outside / "cluster"
                shutil.chown(cluster.parent, self.user, self.user)
        bin_dir = find_bin_dir()
        args = [
            str(bin_dir / "initdb"),
            "-D",
            str(cluster),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ]
        if not self.durable:
            args.append("--no-sync")
        result = subprocess.run(self._command(args), capture_output=True, text=True)
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed: {result.stderr.strip()}")

    def _pid_file_port(self) -> int | None:
        """The port of the server the lock file names, if that server is running."""
        pid_file = self.cluster_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None
        if len(lines) < 4:
            return None
        try:
            pid, port = int(lines[0]), int(lines[3])
        except ValueError:
            return None
        return port if self._is_our_postmaster(pid) else None

    def _is_our_postmaster(self, pid: int) -> bool:
        """Whether `pid` is alive and, where /proc tells, a postgres serving this cluster. A
        lock file left by a server that died with the machine (or by SIGKILL) names a PID
        that, after a reboot or in a container, another process soon holds: taken for the
        server, it sent every command to a port nobody listens on, for good."""
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        if not Path("/proc/self").exists():
            return True  # no /proc (macOS): the PID must do
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except FileNotFoundError:
            return False  # gone since
        except OSError:
            return True
        if Path(argv[0]).name not in ("postgres", "postmaster"):
            return False
        if "-D" in argv[:-1]:
            given = Path(argv[argv.index("-D") + 1])
            return given.resolve() == self.cluster_dir.resolve()
        return True

    def _remove_stale_lock_file(self) -> None:
        """PostgreSQL refuses to start while its lock file names a live process, whatever
        that process is, or is unreadable; such a file, left by a server that is gone, is
        removed first."""
        pid_file = self.cluster_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except FileNotFoundError:
            return
        # empty or cut short (the machine died as the server started): PostgreSQL refuses
        # that too; no other start is under way, the caller holds the cluster's lock
        if (
            not lines
            or not lines[0].strip().isdigit()
            or not self._is_our_postmaster(int(lines[0]))
        ):
            pid_file.unlink()

    def _url(self, port: int, database: str = DATABASE_NAME) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}/{database}"

    def _start(self) -> int:
        port = free_port()
        bin_dir = find_bin_dir()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' "
            # tally loads in large batches: fewer checkpoints and smaller WAL.
            "-c shared_buffers=256MB -c max_wal_size=4GB -c checkpoint_timeout=30min "
            "-c wal_compression=on"
        )
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        args = [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(self.cluster_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        ]
        result = subprocess.run(self._command(args), capture_output=True, text=True)
        if result.returncode != 0:
            log_tail = ""
            with contextlib.suppress(OSError):
                log_tail = self.log_file.read_text()[-2000:]
            raise EmbeddedPostgresError(
                f"could not start PostgreSQL in {self.cluster_dir}: "
                f"{result.stderr.strip() or result.stdout.strip()}\n{log_tail}"
            )
        return port

    def _ensure_database(self, port: int) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(
                    host="127.0.0.1",
                    port=port,
                    user=SUPERUSER,
                    dbname="postgres",
                    autocommit=True,
                    connect_timeout=5,
                ) as conn:
                    exists = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
                    ).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def ensure_running(self) -> str:
        """Start the cluster if needed (creating it on first use) and return its URL."""
        port = self._pid_file_port()
        if port is not None:
            return self._url(port)
        with self._lock():
            port = self._pid_file_port()
            if port is None:
                if not (self.cluster_dir / "PG_VERSION").exists():
                    self._initdb()
                self._remove_stale_lock_file()
                port = self._start()
            self._ensure_database(port)
        return self._url(port)

    def status(self) -> ServerStatus:
        port = self._pid_file_port()
        return ServerStatus(
            running=port is not None,
            data_dir=self.cluster_dir,
            port=port,
            url=self._url(port) if port else None,
        )

    def stop(self) -> bool:
        """Stop the server; True if one was running."""
        if self._pid_file_port() is None:
            return False
        bin_dir = find_bin_dir()
        args = [str(bin_dir / "pg_ctl"), "-D", str(self.cluster_dir), "-m", "fast", "-w", "stop"]
        result = subprocess.run(self._command(args), capture_output=True, text=True)
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"pg_ctl stop failed: {result.stderr.strip()}")
        return True
