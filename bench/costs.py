"""Cost benchmark.

Part 1 (--events N, default 10 million; 0 skips it): usage events priced (`price_usage`) and
rolled up (`cost_daily`) with the asset transforms, and both tables written to a DuckDB
warehouse, in events per second.

Part 2 (--corpus-mb N, default 1000; 0 skips it): on a generated corpus, `tally ingest all`
+ `tally materialize` + `tally report costs --by day` against `ccusage daily --offline
--json` on the same files; then, in each of --rounds rounds, 1 MB of new lines is appended
and `tally report costs --by day --refresh` (one command: read the new lines, price the days
they touched live) runs against ccusage again (the median ratio counts); the last round's
rows are compared with those materialising gives; then another 1 MB goes through the three
commands of the scheduled path, for comparison.

    .venv/bin/python bench/costs.py [--events 10000000] [--corpus-mb 1000] [--rounds 5]
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
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assets.costs.transform import cost_daily  # noqa: E402
from assets.pricing.catalog import price_table  # noqa: E402
from assets.pricing.transform import price_keys, price_usage  # noqa: E402
from ingestion.warehouse.base import open_warehouse  # noqa: E402
from schemas.warehouse import COST_DAILY, USAGE_PRICED  # noqa: E402

MODELS = [
    ("anthropic", "claude-opus-4-6"), ("anthropic", "claude-sonnet-4-5-20250929"),
    ("anthropic", "claude-haiku-4-5-20251001"), ("anthropic", "claude-sonnet-4-20250514"),
    ("openai", "gpt-5-codex"), ("openai", "gpt-5.2-codex"), ("anthropic", "claude-imaginary"),
]  # fmt: skip


def synthetic_usage(n: int, days: int = 30, seed: int = 1) -> pl.DataFrame:
    """Events shaped like agent usage: each session lives on one day, in one project, and
    mostly uses one model (a tenth of its requests go to a second, e.g. a subagent's)."""
    rng = np.random.default_rng(seed)
    sessions_per_day = max(1, n // (days * 300))  # about 300 requests a session
    day_index = rng.integers(0, days, n)
    session = day_index * sessions_per_day + rng.integers(0, sessions_per_day, n)
    main_model = session % (len(MODELS) - 1)
    model_index = np.where(rng.random(n) < 0.9, main_model,
                           rng.integers(0, len(MODELS), n))  # fmt: skip
    seconds = rng.integers(0, 86_400, n)
    start = date(2026, 10, 1)
    frame = pl.DataFrame({
        "event_id": np.arange(n, dtype=np.int64),
        "company_id": np.ones(n, dtype=np.int64),
        "source": np.where(model_index >= 4, "codex", "claude_code"),
        "session_key": session.astype(str),
        "project": np.array(["billing", "web", "tools", "docs"])[session % 4],
        # typed as extraction types it: an untyped all-null column would cross to DuckDB
        # through pyarrow (4 s of the writes), which no materialisation does
        "agent": pl.Series([None] * n, dtype=pl.String),
        "provider": np.array([p for p, _ in MODELS])[model_index],
        "model": np.array([m for _, m in MODELS])[model_index],
        "input_tokens": rng.integers(0, 3000, n),
        "output_tokens": rng.integers(1, 4000, n),
        "reasoning_tokens": np.zeros(n, dtype=np.int64),
        "cache_read_tokens": rng.integers(0, 250_000, n),
        "cache_write_5m_tokens": rng.integers(0, 5000, n) * (rng.random(n) < 0.3),
        "cache_write_1h_tokens": rng.integers(0, 5000, n) * (rng.random(n) < 0.3),
        "web_search_requests": (rng.random(n) < 0.01).astype(np.int64),
        "service_tier": None, "speed": None,
        "reported_cost_usd": None,
    })  # fmt: skip
    return frame.with_columns(
        (pl.lit(start) + pl.duration(days=pl.Series(day_index))).alias("day"),
        pl.col("session_key").alias("root_session_key"),
        pl.col("reported_cost_usd").cast(pl.Decimal(38, 12)),
    ).with_columns(
        (
            pl.col("day").cast(pl.Datetime("us", "UTC")) + pl.duration(seconds=pl.Series(seconds))
        ).alias("occurred_at")
    )


def part_one(events: int) -> None:
    print(f"generating {events:,} synthetic usage events ...", flush=True)
    usage = synthetic_usage(events)
    workdir = Path(tempfile.mkdtemp(prefix="tally-bench-"))
    warehouse = open_warehouse(f"duckdb://{workdir / 'warehouse.duckdb'}")
    warehouse.ensure_table(USAGE_PRICED)
    warehouse.ensure_table(COST_DAILY)
    started = time.perf_counter()
    prices = price_table(price_keys(usage), [])
    resolved = time.perf_counter()
    priced = price_usage(usage, prices).select(USAGE_PRICED.column_names)
    priced_at = time.perf_counter()
    daily = cost_daily(priced, frozenset({"claude_code"}))
    rolled = time.perf_counter()
    first, last = date(2026, 10, 1), date(2026, 10, 31)
    warehouse.replace_window(USAGE_PRICED, first, last, priced)
    warehouse.replace_window(COST_DAILY, first, last, daily)
    written = time.perf_counter()
    total = written - started
    print(f"price table: {prices.height} keys in {resolved - started:.2f} s")
    print(
        f"pricing:     {priced_at - resolved:.2f} s   rollup: {rolled - priced_at:.2f} s   "
        f"warehouse writes: {written - rolled:.2f} s"
    )
    print(
        f"10M-event pass: {total:.2f} s = {events / total:,.0f} events/s priced, rolled up "
        f"and written ({(priced['pricing_status'] == 'unpriced').sum():,} unpriced)"
    )
    unwritten = events / (rolled - started)
    print(f"  (pricing + rollup alone: {unwritten:,.0f} events/s)")
    shutil.rmtree(workdir, ignore_errors=True)


def timed(args: list[str], env: dict[str, str]) -> float:
    return timed_output(args, env)[0]


def materialize_days(days: list[date], env: dict[str, str]) -> float:
    from ingest import TALLY  # type: ignore[import-not-found]

    return timed([str(TALLY), "materialize", "--from", days[0].isoformat(), "--to",
                  days[-1].isoformat()], env)  # fmt: skip


def timed_output(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return time.perf_counter() - started, result.stdout


def part_two(megabytes: float, rounds: int) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from ingest import CCUSAGE, TALLY, scratch_database, server_url  # type: ignore[import-not-found]
    from sqlalchemy.engine import make_url

    from ingestion.demo.corpus import generate_corpus

    corpus = Path(tempfile.mkdtemp(prefix="tally-costs-corpus-"))
    print(f"\ngenerating a {megabytes:g} MB corpus ...", flush=True)
    generate_corpus(corpus, megabytes=megabytes, seed=77, days=30)
    admin = server_url(None)
    data_dir = Path(tempfile.mkdtemp(prefix="tally-costs-data-"))
    home = tempfile.mkdtemp()
    cc_env = {**os.environ, "HOME": home, "CLAUDE_CONFIG_DIR": str(corpus / "claude"),
              "CODEX_HOME": str(corpus / "codex")}  # fmt: skip
    try:
        with scratch_database(admin) as url:
            env = {**os.environ, "TALLY_DATABASE_URL": url, "TALLY_DATA_DIR": str(data_dir),
                   "TALLY_DAGSTER_DATABASE": f"{make_url(url).database}_dagster",
                   "TALLY_CLAUDE_DIR": str(corpus / "claude" / "projects"),
                   "TALLY_CODEX_DIR": str(corpus / "codex" / "sessions")}  # fmt: skip
            subprocess.run([str(TALLY), "db", "upgrade"], env=env, check=True, capture_output=True)
            ingest = timed([str(TALLY), "ingest", "all"], env)
            materialize = timed([str(TALLY), "materialize"], env)
            report = timed([str(TALLY), "report", "costs", "--by", "day", "--format", "json"], env)
            tally_first = ingest + materialize + report
            ccusage_first = timed([str(CCUSAGE), "daily", "--offline", "--json"], cc_env)
            print(
                f"first pass  tally: ingest {ingest:.2f} s + materialize {materialize:.2f} s + "
                f"report {report:.2f} s = {tally_first:.2f} s;  "
                f"ccusage daily: {ccusage_first:.2f} s"
            )
            # after new lines: one command reads them and prices the days they touched live;
            # several rounds, since one run on a shared VM says little
            report_args = [str(TALLY), "report", "costs", "--by", "day", "--format", "json"]
            ratios = []
            for round_ in range(1, rounds + 1):
                touched = append_new_lines(corpus, 1_000_000, seed=990 + round_)
                refreshed = timed_output([*report_args, "--refresh"], env)
                ccusage_repeat = timed([str(CCUSAGE), "daily", "--offline", "--json"], cc_env)
                ratios.append(refreshed[0] / ccusage_repeat)
                print(
                    f"after +1 MB ({round_}/{rounds}) tally report costs --by day --refresh: "
                    f"{refreshed[0]:.2f} s;  ccusage daily: {ccusage_repeat:.2f} s;  "
                    f"ratio {ratios[-1]:.2f}"
                )
            print(f"  median ratio {statistics.median(ratios):.2f} (target <= 0.25)")
            materialize = materialize_days(touched, env)
            stored = timed_output(report_args, env)
            print(
                f"  the same rows as materialising those days ({materialize:.2f} s) and reporting "
                f"({stored[0]:.2f} s): {refreshed[1] == stored[1]}"
            )
            # the three commands, as the scheduled path runs them, after another 1 MB
            touched = append_new_lines(corpus, 1_000_000, seed=980)
            ingest = timed([str(TALLY), "ingest", "all"], env)
            materialize = materialize_days(touched, env)
            report = timed(report_args, env)
            print(
                f"after another +1 MB, tally ingest all {ingest:.2f} s + materialize "
                f"{materialize:.2f} s + report {report:.2f} s = "
                f"{ingest + materialize + report:.2f} s"
            )
    finally:
        for path in (corpus, data_dir, Path(home)):
            shutil.rmtree(path, ignore_errors=True)


APPEND_DAY = date(2026, 11, 1)


def append_new_lines(corpus: Path, target_bytes: int, seed: int) -> list[date]:
    """Append about `target_bytes` of new Claude lines (a day after the corpus) to existing
    transcripts, as sessions that continue; returns the days they touch."""
    from datetime import UTC, datetime

    from ingestion.demo.corpus import generate_corpus

    extra = Path(tempfile.mkdtemp(prefix="tally-append-"))
    generate_corpus(
        extra,
        megabytes=target_bytes / 1e6,
        seed=seed,
        days=1,
        codex_share=0,
        start=datetime.combine(APPEND_DAY, datetime.min.time(), tzinfo=UTC),
    )
    existing = sorted((corpus / "claude" / "projects").rglob("*.jsonl"))
    for index, path in enumerate(sorted((extra / "claude" / "projects").rglob("*.jsonl"))):
        with open(existing[index % len(existing)], "ab") as handle:
            handle.write(path.read_bytes())
    shutil.rmtree(extra, ignore_errors=True)
    return [APPEND_DAY, APPEND_DAY + timedelta(days=1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="0 skips part 1")
    parser.add_argument("--corpus-mb", type=float, default=1000.0, help="0 skips part 2")
    parser.add_argument(
        "--rounds", type=int, default=5, help="part 2: appends of 1 MB, each reported and timed"
    )
    args = parser.parse_args()
    if args.events > 0:
        part_one(args.events)
    if args.corpus_mb > 0:
        if not (ROOT / ".data" / "tools" / "node_modules" / ".bin" / "ccusage").exists():
            print("ccusage not installed (make setup installs it): part 2 skipped")
            return
        part_two(args.corpus_mb, args.rounds)


if __name__ == "__main__":
    main()
