"""Ingestion benchmark: a cold ingest of an N MB corpus, a no-change re-run, peak memory,
and ccusage on the same files in the same run.

    .venv/bin/python bench/ingest.py [--mb 1000] [--database-url URL]

The corpus is generated once per (size, seed) under .data/bench/ and reused. The database is
a fresh one created for the run (on TALLY_BENCH_DATABASE_URL's server, else the local server
on 127.0.0.1:5432, else the embedded one) and dropped afterwards. Timings are of the `tally`
command as a user runs it, start-up included. Peak RSS is sampled over the whole process
tree (the command and its parse workers), and also reported for the largest single process.
The CPU time of the last cold ingest is split between tally (the command and its workers) and
PostgreSQL (when the server runs on this machine): with both cores busy, wall time follows
their sum.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingestion.demo.corpus import generate_corpus  # noqa: E402

TALLY = ROOT / ".venv" / "bin" / "tally"
CCUSAGE = ROOT / ".data" / "tools" / "node_modules" / ".bin" / "ccusage"


def server_url(explicit: str | None) -> str:
    for candidate in (
        explicit,
        os.environ.get("TALLY_BENCH_DATABASE_URL"),
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    ):
        if not candidate:
            continue
        try:
            with psycopg.connect(_conninfo(candidate), connect_timeout=3):
                return candidate
        except psycopg.OperationalError:
            continue
    from ingestion.store import embedded_server

    return str(make_url(embedded_server().ensure_running()).set(database="postgres"))


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def scratch_database(admin_url: str, prefix: str = "tally_bench") -> Iterator[str]:
    """A fresh database on the admin URL's server, as a URL; dropped afterwards with the
    Dagster storage database a tally command may have created beside it."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_conninfo(admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield str(make_url(admin_url).set(database=name))
    finally:
        with psycopg.connect(_conninfo(admin_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'DROP DATABASE IF EXISTS "{name}_dagster" WITH (FORCE)')


class TreeMemory:
    """Samples the summed RSS of a process and its descendants."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _tree(self) -> list[int]:
        pids, frontier = [self.pid], [self.pid]
        while frontier:
            parent = frontier.pop()
            try:
                children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            except OSError:
                continue
            pids.extend(int(c) for c in children)
            frontier.extend(int(c) for c in children)
        return pids

    def _sample(self) -> None:
        while self.running:
            total = 0
            for pid in self._tree():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
                except OSError:
                    continue
            self.peak_kb = max(self.peak_kb, total)
            time.sleep(0.02)

    def stop(self) -> int:
        self.running = False
        self.thread.join()
        return self.peak_kb


def server_cpu_seconds() -> float | None:
    """CPU time used so far by this machine's PostgreSQL processes, reaped backends included
    (a backend's time passes to the postmaster's children counters when it exits); None
    when no server runs here, e.g. on a remote TALLY_BENCH_DATABASE_URL."""
    ticks, found = 0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, fields = text[text.find("(") + 1 : text.rfind(")")], text[text.rfind(")") + 2 :]
        if name.startswith("postgres"):
            found = True
            ticks += sum(int(value) for value in fields.split()[11:15])
    return ticks / os.sysconf("SC_CLK_TCK") if found else None


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    memory = TreeMemory(process.pid)
    _, stderr = process.communicate()
    elapsed = time.perf_counter() - started
    peak = memory.stop()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{stderr.decode()[-2000:]}")
    return elapsed, peak


def cold_ingests(admin_url: str, corpus_dir: Path, repeat: int) -> dict[str, float]:
    """Cold ingests into fresh databases; the last one is also re-run with no change."""
    out: dict[str, float] = {"peak_kb": 0}
    colds: list[float] = []
    for attempt in range(repeat):
        with scratch_database(admin_url) as db_url:
            env = {
                **os.environ,
                "TALLY_DATABASE_URL": db_url,
                "TALLY_CLAUDE_DIR": str(corpus_dir / "claude" / "projects"),
                "TALLY_CODEX_DIR": str(corpus_dir / "codex" / "sessions"),
            }
            subprocess.run([str(TALLY), "db", "upgrade"], env=env, check=True, capture_output=True)
            tally_cpu, server_cpu = children_cpu_seconds(), server_cpu_seconds()
            cold, peak = run_timed([str(TALLY), "ingest", "all"], env)
            colds.append(cold)
            out["tally_cpu"] = children_cpu_seconds() - tally_cpu
            server_after = server_cpu_seconds()
            if server_cpu is not None and server_after is not None:
                out["server_cpu"] = server_after - server_cpu
            out["peak_kb"] = max(out["peak_kb"], peak)
            print(f"cold ingest {attempt + 1}/{repeat}: {cold:.2f} s", flush=True)
            if attempt == repeat - 1:
                with psycopg.connect(_conninfo(db_url)) as conn:
                    out["events"] = conn.execute(
                        "SELECT count(*) FROM token_usage_events"
                    ).fetchone()[0]
                    out["calls"] = conn.execute("SELECT count(*) FROM tool_calls").fetchone()[0]
                out["rerun"], out["rerun_peak_kb"] = run_timed([str(TALLY), "ingest", "all"], env)
    out["cold"] = statistics.median(colds)
    out["best"] = min(colds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=1000.0, help="corpus size in MB")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3, help="cold ingests (median counts)")
    parser.add_argument("--database-url", help="a superuser URL of the server to use")
    args = parser.parse_args()

    corpus_dir = ROOT / ".data" / "bench" / f"corpus-{args.mb:g}mb-seed{args.seed}"
    if not (corpus_dir / ".complete").exists():
        shutil.rmtree(corpus_dir, ignore_errors=True)
        started = time.perf_counter()
        generate_corpus(corpus_dir, megabytes=args.mb, seed=args.seed)
        (corpus_dir / ".complete").touch()
        print(f"generated corpus in {time.perf_counter() - started:.1f} s")
    size = sum(p.stat().st_size for p in corpus_dir.rglob("*.jsonl"))
    files = sum(1 for _ in corpus_dir.rglob("*.jsonl"))

    result = cold_ingests(server_url(args.database_url), corpus_dir, args.repeat)
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss

    ccusage_times = []
    if CCUSAGE.exists():
        home = tempfile.mkdtemp()
        cc_env = {
            **os.environ,
            "HOME": home,
            "CLAUDE_CONFIG_DIR": str(corpus_dir / "claude"),
            "CODEX_HOME": str(corpus_dir / "codex"),
        }
        for _ in range(args.repeat):
            ccusage_times.append(
                run_timed([str(CCUSAGE), "daily", "--offline", "--json"], cc_env)[0]
            )
        shutil.rmtree(home, ignore_errors=True)

    mb, cold, events = size / 1e6, result["cold"], result["events"]
    print(
        f"\ncorpus: {mb:,.1f} MB in {files:,} files -> {events:,} usage events, "
        f"{result['calls']:,} tool calls ({os.cpu_count()} cores)"
    )
    print(
        f"cold ingest (tally ingest all):  {cold:7.2f} s   {mb / cold:6.1f} MB/s   "
        f"{events / cold:,.0f} events/s   (median of {args.repeat}, best {result['best']:.2f} s)"
    )
    cpu = f"{result['tally_cpu']:.1f} s tally and its parse workers"
    if "server_cpu" in result:
        cpu += f" + {result['server_cpu']:.1f} s PostgreSQL"
    print(f"CPU of the last cold ingest:     {cpu} ({os.cpu_count()} cores)")
    print(
        f"peak RSS during ingest:          {result['peak_kb'] / 1024:7,.0f} MB (process tree), "
        f"{largest / 1024:,.0f} MB (largest single process)"
    )
    print(
        f"no-change re-run:                {result['rerun']:7.2f} s   "
        f"peak RSS {result['rerun_peak_kb'] / 1024:,.0f} MB"
    )
    if ccusage_times:
        ccusage_time = statistics.median(ccusage_times)
        print(
            f"ccusage daily --offline --json:  {ccusage_time:7.2f} s   "
            f"{mb / ccusage_time:6.1f} MB/s   (median of {len(ccusage_times)})"
        )
        print(f"tally cold ingest / ccusage:     {cold / ccusage_time:7.2f}x")
    else:
        print("ccusage not installed (make setup installs it): no comparison")


if __name__ == "__main__":
    main()
