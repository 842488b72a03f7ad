"""Find PostgreSQL server binaries: an explicit dir, the system's, or the pgserver wheel's."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path


class PostgresBinariesNotFound(RuntimeError):
    pass


def _version_key(path: Path) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", path.parent.name)
    return tuple(int(n) for n in numbers) or (0,)


def _candidates() -> Iterator[Path]:
    explicit = os.environ.get("TALLY_PG_BIN")
    if explicit:
        yield Path(explicit)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            )
            yield Path(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    yield from sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    # Imported last: pgserver is only the fallback, and its import warns without XDG dirs.
    try:
        import pgserver  # type: ignore[import-untyped]

        yield Path(pgserver.__file__).parent / "pginstall" / "bin"
    except ImportError:
        return


def find_bin_dir() -> Path:
    """The first directory holding `initdb`, `pg_ctl` and `postgres`."""
    for candidate in _candidates():
        if all((candidate / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return candidate
    raise PostgresBinariesNotFound(
        "no PostgreSQL server binaries found: install Debian's `postgresql` package "
        "(make setup does this as root), `pip install pgserver`, or set TALLY_PG_BIN"
    )
