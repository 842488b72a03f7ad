"""Where a cold ingest spends its time in PostgreSQL: runs `tally ingest all` in this process
on the benchmark corpus (see bench/ingest.py) into a fresh database, timing every statement
the loader sends, and prints the statements by total time; `--explain` also prints the plan
(EXPLAIN ANALYZE, executed in a savepoint that is rolled back) of the first usage and tool-call
merge, with the time of each foreign-key trigger and of JIT compilation.

    .venv/bin/python bench/ingest_sql.py [--mb 200] [--seed 42] [--explain]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import scratch_database, server_url  # type: ignore[import-not-found]  # noqa: E402

MERGES = ("WITH merged AS", "INSERT INTO tool_calls AS t")


class StatementTimes:
    """Wraps psycopg's execute methods; totals time and calls per statement."""

    def __init__(self, explain: bool) -> None:
        self.explain = explain
        self.totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        self.explained: set[str] = set()
        self.lock = threading.Lock()

    def install(self) -> None:
        for owner, name in ((psycopg.Cursor, "execute"), (psycopg.Cursor, "executemany"),
                            (psycopg.Connection, "execute")):  # fmt: skip
            setattr(owner, name, self._timed(getattr(owner, name)))

    def _timed(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def timed(target: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            text = query if isinstance(query, str) else str(query)
            head = " ".join(text.split())[:72]
            if self.explain and isinstance(target, psycopg.Cursor):
                self._explain_once(original, target, text, head, args, kwargs)
            started = time.perf_counter()
            try:
                return original(target, query, *args, **kwargs)
            finally:
                with self.lock:
                    entry = self.totals[head]
                    entry[0] += 1
                    entry[1] += time.perf_counter() - started

        return timed

    def _explain_once(self, original: Callable[..., Any], cursor: psycopg.Cursor[Any],
                      text: str, head: str, args: Any, kwargs: Any) -> None:  # fmt: skip
        merge = next((m for m in MERGES if head.startswith(m)), None)
        if merge is None or merge in self.explained or not args:
            return
        self.explained.add(merge)
        original(cursor, "SAVEPOINT bench_explain")
        original(cursor, "EXPLAIN (ANALYZE, BUFFERS) " + text, *args, **kwargs)
        plan = [row[0] for row in cursor.fetchall()]
        original(cursor, "ROLLBACK TO SAVEPOINT bench_explain")
        keep = ("Execution Time", "Trigger for", "JIT", "Timing:", "Insert on", "Sort Method")
        print(f"\nplan of {merge} ...:", file=sys.stderr)
        for line in plan:
            if any(word in line for word in keep):
                print("  " + line.strip(), file=sys.stderr)

    def report(self, wall: float) -> None:
        total = sum(seconds for _, seconds in self.totals.values())
        print(f"\nwall {wall:.2f} s; time in SQL statements {total:.2f} s")
        ranked = sorted(self.totals.items(), key=lambda item: -item[1][1])
        for head, (calls, seconds) in ranked[:20]:
            print(f"{seconds:7.2f} s {int(calls):6d}x  {head}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=200.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    corpus = ROOT / ".data" / "bench" / f"corpus-{args.mb:g}mb-seed{args.seed}"
    if not (corpus / ".complete").exists():
        raise SystemExit(f"no corpus at {corpus}: run bench/ingest.py --mb {args.mb:g} first")
    admin = server_url(None)
    with scratch_database(admin, "tally_bench_sql") as url:
        os.environ.update({
            "TALLY_DATABASE_URL": url,
            "TALLY_DATA_DIR": str(ROOT / ".data" / "bench" / "ingest-sql"),
            "TALLY_CLAUDE_DIR": str(corpus / "claude" / "projects"),
            "TALLY_CODEX_DIR": str(corpus / "codex" / "sessions"),
        })  # fmt: skip
        from pipelines.cli.main import app

        times = StatementTimes(args.explain)
        times.install()
        started = time.perf_counter()
        try:
            app(["ingest", "all"], standalone_mode=False)
        finally:
            times.report(time.perf_counter() - started)


if __name__ == "__main__":
    main()
