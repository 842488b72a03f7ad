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
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from ingest import TALLY, server_url  # type: ignore[import-not-found]  # noqa: E402
from report import fill, scratch_store  # type: ignore[import-not-found]  # noqa: E402

ASSETS = ["usage_priced", "cost_daily", "usage_attributed", "attribution_daily"]


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
    with scratch_store(server_url(args.database_url), "tally-materialize-bench") as (url, env):
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


if __name__ == "__main__":
    main()
