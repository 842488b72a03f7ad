"""Report latency against a large canonical store.

Every `tally report costs` first checks that the warehouse has caught up with the canonical
store: it sums the stored usage per UTC day. This benchmark fills a fresh database with N
synthetic usage events (server-side, in a year of days, over 30,000 sessions), then times
that per-day sum alone and the whole `tally report costs --by day --warehouse-only` command as
a user runs it (start-up included; the warehouse is empty, so the report's own read is trivial
and the figure is the check's). Then the same report without `--warehouse-only`: every day is
behind the (empty) warehouse, so the whole store is priced live, as materialising it would.

    .venv/bin/python bench/report.py [--events 2000000] [--database-url URL]

The database is created on TALLY_BENCH_DATABASE_URL's server, else the local server on
127.0.0.1:5432, else the embedded one, and dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import TALLY, _conninfo, scratch_database, server_url  # type: ignore[import-not-found]  # noqa: E402

from ingestion.store import CanonicalStore  # noqa: E402

SESSIONS = 30_000
CHUNK = 1_000_000

FILL = """
INSERT INTO token_usage_events (company_id, session_id, source, message_id, request_id,
    occurred_at, provider, model, input_tokens, output_tokens, cache_read_tokens, origin)
SELECT %(company)s, %(first_session)s + g %% {sessions}, 'claude_code', 'm' || g, 'r' || g,
       timestamptz '2026-01-01' + g * (interval '1 second' * %(seconds)s / %(total)s),
       'anthropic', CASE WHEN g %% 10 = 0 THEN 'claude-opus-4-5' ELSE 'claude-sonnet-4-5' END,
       g %% 3000, g %% 4000, g %% 250000, 'transcript'
FROM generate_series(%(low)s, %(high)s) AS g
"""


@contextmanager
def scratch_store(admin_url: str, prefix: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A fresh, migrated canonical store on the admin URL's server, and the environment
    that points tally commands at it (and at a data directory of their own); both removed
    afterwards."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    try:
        with scratch_database(admin_url) as url:
            env = {**os.environ, "TALLY_DATABASE_URL": url, "TALLY_DATA_DIR": str(data_dir),
                   "TALLY_PARTITIONS_START": "2026-01-01"}  # fmt: skip
            subprocess.run([str(TALLY), "db", "upgrade"], env=env, check=True, capture_output=True)
            yield url, env
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def fill(url: str, events: int, days: int = 365) -> None:
    """N usage events spread evenly over `days` days from 2026-01-01, in 30,000 sessions
    of 40 project paths; a tenth of them opus, the rest sonnet."""
    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        company = conn.execute(
            "INSERT INTO companies (slug, name) VALUES ('bench', 'bench') RETURNING id"
        ).fetchone()[0]
        conn.execute(
            """INSERT INTO agent_sessions (company_id, source, session_key, project_path)
               SELECT %s, 'claude_code', 's' || g, '/work/p' || (g %% 40)
               FROM generate_series(1, %s) AS g""",
            (company, SESSIONS),
        )
        first_session = conn.execute("SELECT min(id) FROM agent_sessions").fetchone()[0]
        for low in range(1, events + 1, CHUNK):
            started = time.perf_counter()
            conn.execute(
                FILL.format(sessions=SESSIONS),
                {"company": company, "first_session": first_session, "total": events,
                 "seconds": days * 86_400, "low": low, "high": min(events, low + CHUNK - 1)},
            )  # fmt: skip
            done = min(events, low + CHUNK - 1)
            print(f"  {done:,} events ({time.perf_counter() - started:.1f} s)", flush=True)
        conn.execute("ANALYZE token_usage_events")
        conn.execute("ANALYZE agent_sessions")


def timed_report(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"tally report costs failed:\n{result.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with scratch_store(server_url(args.database_url), "tally-report-bench") as (url, env):
        print(f"filling {args.events:,} usage events ...", flush=True)
        fill(url, args.events)
        store = CanonicalStore(url)
        sums = []
        for _ in range(3):
            started = time.perf_counter()
            days = store.daily_totals(date(2026, 1, 1), date(2027, 1, 1))
            sums.append(time.perf_counter() - started)
        command = [str(TALLY), "report", "costs", "--by", "day", "--format", "json"]
        report = timed_report([*command, "--warehouse-only"], env)
        print(
            f"per-day usage sum of {args.events:,} events ({len(days)} days): "
            f"median {statistics.median(sums):.2f} s of {len(sums)} "
            f"(best {min(sums):.2f} s)"
        )
        print(f"tally report costs --by day --format json --warehouse-only: {report:.2f} s")
        print(f"the same report pricing every day live: {timed_report(command, env):.2f} s")


if __name__ == "__main__":
    main()
