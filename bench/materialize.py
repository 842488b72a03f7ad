"""Materialising a long range: time and peak memory of `tally materialize` over every day.

Fills a fresh database with N synthetic usage events spread evenly over D days (server-side,
over 30,000 sessions), then runs `tally materialize` with no partition option, as an operator
backfilling a new install does: pricing, attribution and the rollups of every day in one run.
Prints the wall time, the events per second and the peak RSS of the command; then runs each
asset again alone (`--select`), for the time and peak RSS of each.

    .venv/bin/python bench/materialize.py [--events 6000000] [--days 60] [--database-url URL]

The database is created on TALLY_BENCH_DATABASE_URL's server, else the local server on
127.0.0.1:5432, else the embedded one, and dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from ingest import TALLY, _conninfo, scratch_database, server_url  # type: ignore[import-not-found]  # noqa: E402

ASSETS = ["usage_priced", "cost_daily", "usage_attributed", "attribution_daily"]
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


def fill(url: str, events: int, days: int) -> None:
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
            conn.execute(
                FILL.format(sessions=SESSIONS),
                {"company": company, "first_session": first_session, "total": events,
                 "seconds": days * 86_400 - 1, "low": low,
                 "high": min(events, low + CHUNK - 1)},
            )  # fmt: skip
            print(f"  {min(events, low + CHUNK - 1):,} events", flush=True)
        conn.execute("ANALYZE")


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[1:])} failed:\n{errors[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=6_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    admin = server_url(args.database_url)
    data_dir = Path(tempfile.mkdtemp(prefix="tally-materialize-bench-"))
    try:
        with scratch_database(admin) as url:
            env = {**os.environ, "TALLY_DATABASE_URL": url, "TALLY_DATA_DIR": str(data_dir),
                   "TALLY_PARTITIONS_START": "2026-01-01"}  # fmt: skip
            subprocess.run([str(TALLY), "db", "upgrade"], env=env, check=True, capture_output=True)
            print(f"filling {args.events:,} usage events over {args.days} days ...", flush=True)
            fill(url, args.events, args.days)
            elapsed, peak_mb = timed([str(TALLY), "materialize"], env)
            print(
                f"tally materialize, {args.events:,} events over {args.days} days: "
                f"{elapsed:.1f} s ({args.events / elapsed:,.0f} events/s), "
                f"peak RSS {peak_mb:,.0f} MB",
                flush=True,
            )
            for asset in ASSETS:
                elapsed, peak_mb = timed([str(TALLY), "materialize", "--select", asset], env)
                print(f"  {asset:<18} {elapsed:6.1f} s, peak RSS {peak_mb:,.0f} MB", flush=True)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
