"""Work-graph ingests at scale: `tally ingest paperclip`, `tally ingest pigeon` and `tally
ingest git`, cold and again with nothing changed (what the hourly schedule pays), with the
peak RSS of each.

Paperclip and Pigeon get a third run with `--full`: an upstream unchanged is not read again,
and that run shows what reading and comparing all of it costs.

The Paperclip database (Paperclip's table shapes, from `tests/paperclip_fixture.py`) is filled
server-side: per unit of --scale, 50,000 issues done through two status changes and two
comments each (200,000 activity rows), 50,000 heartbeat runs of 10 events each (500,000),
100,000 cost events; plus 200 agents, 100 projects, 50 goals and 5,000 finance events. The
Pigeon file holds --cards cards with four activity rows each, one git link per two cards, two
token-usage rollups (two sessions) and ten tool-call rows per card. The git repository
(written by `git fast-import`) holds --commits commits, each citing `#N` and `PAP-N`.

    .venv/bin/python bench/workgraph.py [--scale 1] [--cards 20000] [--commits 20000]
                                        [--database-url URL]

Databases are created on TALLY_BENCH_DATABASE_URL's server, else the local server on
127.0.0.1:5432, else the embedded one, and dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import TALLY, _conninfo, run_timed, scratch_database, server_url  # type: ignore[import-not-found]  # noqa: E402

from tests.paperclip_fixture import DDL as PAPERCLIP_DDL  # noqa: E402
from tests.pigeon_fixture import DDL as PIGEON_DDL  # noqa: E402

# uuids Paperclip-style, numbered: block + n
UUID = "('00000000-0000-4000-8000-' || lpad(({block} + {n})::text, 12, '0'))::uuid"
COMPANY = UUID.format(block=0, n=1)


def uuid(block: int, n: str) -> str:
    return UUID.format(block=block, n=n)


def fill_paperclip(conninfo: str, scale: int) -> dict[str, int]:
    issues, runs = 50_000 * scale, 50_000 * scale
    at = "timestamptz '2026-06-01' + g * interval '5 minutes'"
    statements = [
        PAPERCLIP_DDL,
        f"INSERT INTO companies (id, name) VALUES ({COMPANY}, 'Acme')",
        f"""INSERT INTO agents (id, company_id, name, role, adapter_type, adapter_config)
            SELECT {uuid(1000, "g")}, {COMPANY}, 'agent ' || g, 'engineer', 'claude_local',
                   jsonb_build_object('cwd', '/srv/p' || g % 100)
            FROM generate_series(1, 200) g""",
        f"""INSERT INTO goals (id, company_id, title)
            SELECT {uuid(2000, "g")}, {COMPANY}, 'goal ' || g FROM generate_series(1, 50) g""",
        f"""INSERT INTO projects (id, company_id, goal_id, name)
            SELECT {uuid(3000, "g")}, {COMPANY}, {uuid(2000, "1 + g % 50")}, 'project ' || g
            FROM generate_series(1, 100) g""",
        f"""INSERT INTO heartbeat_runs (id, company_id, agent_id, status, started_at,
                finished_at, session_id_after, context_snapshot, usage_json)
            SELECT {uuid(10**7, "g")}, {COMPANY}, {uuid(1000, "1 + g % 200")}, 'succeeded',
                   {at}, {at} + interval '40 minutes', 'session-' || g,
                   jsonb_build_object('issueId', {uuid(10**8, f"1 + g % {issues}")}),
                   '{{"inputTokens": 10, "outputTokens": 20}}'
            FROM generate_series(1, {runs}) g""",
        f"""INSERT INTO issues (id, company_id, project_id, issue_number, identifier, title,
                status, assignee_agent_id, started_at, completed_at, created_at)
            SELECT {uuid(10**8, "g")}, {COMPANY}, {uuid(3000, "1 + g % 100")}, g, 'PAP-' || g,
                   'issue ' || g, 'done', {uuid(1000, "1 + g % 200")}, {at},
                   {at} + interval '1 hour', {at} - interval '1 hour'
            FROM generate_series(1, {issues}) g""",
        f"""INSERT INTO activity_log (id, company_id, actor_type, actor_id, action, entity_type,
                entity_id, agent_id, run_id, details, created_at)
            SELECT {uuid(2 * 10**8, "g * 4 + k")}, {COMPANY}, 'agent', 'a',
                   CASE WHEN k < 2 THEN 'issue.updated' ELSE 'issue.comment_added' END,
                   'issue', ({uuid(10**8, "g")})::text, {uuid(1000, "1 + g % 200")},
                   {uuid(10**7, f"1 + g % {runs}")},
                   CASE k WHEN 0 THEN '{{"status": "in_progress", "_previous": {{"status": "todo"}}}}'::jsonb
                          WHEN 1 THEN '{{"status": "done", "_previous": {{"status": "in_progress"}}}}'::jsonb
                          ELSE '{{"commentId": "c"}}'::jsonb END,
                   {at} + k * interval '10 minutes'
            FROM generate_series(1, {issues}) g, generate_series(0, 3) k""",  # noqa: E501
        f"""INSERT INTO heartbeat_run_events (company_id, run_id, agent_id, seq, event_type,
                stream, level, message, created_at)
            SELECT {COMPANY}, {uuid(10**7, "g")}, {uuid(1000, "1 + g % 200")}, k, 'lifecycle',
                   'system', 'info', 'step ' || k, {at} + k * interval '1 minute'
            FROM generate_series(1, {runs}) g, generate_series(1, 10) k""",
        f"""INSERT INTO cost_events (id, company_id, agent_id, issue_id, project_id,
                heartbeat_run_id, provider, biller, billing_type, model, input_tokens,
                output_tokens, cost_cents, occurred_at)
            SELECT {uuid(3 * 10**8, "g")}, {COMPANY}, {uuid(1000, "1 + g % 200")},
                   {uuid(10**8, f"1 + g % {issues}")}, {uuid(3000, "1 + g % 100")},
                   {uuid(10**7, f"1 + g % {runs}")}, 'anthropic', 'anthropic', 'metered_api',
                   'claude-sonnet-4-5', 100, 200, 12,
                   timestamptz '2026-06-01' + g * interval '2 minutes'
            FROM generate_series(1, {100_000 * scale}) g""",
        f"""INSERT INTO finance_events (id, company_id, event_kind, direction, biller,
                amount_cents, occurred_at)
            SELECT {uuid(4 * 10**8, "g")}, {COMPANY}, 'platform_fee', 'debit', 'anthropic', 500,
                   timestamptz '2026-06-01' + g * interval '1 hour'
            FROM generate_series(1, 5000) g""",
    ]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
        tables = ("issues", "activity_log", "heartbeat_runs", "heartbeat_run_events",
                  "cost_events")  # fmt: skip
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def write_pigeon(path: Path, cards: int) -> dict[str, int]:
    t0 = 1_780_000_000_000  # epoch ms, as Prisma writes them
    minute = 60_000
    db = sqlite3.connect(path)
    db.executescript(PIGEON_DDL)
    db.execute("INSERT INTO project VALUES ('p1', 'Shop', NULL, 'shop', '/work/shop', 'b1', 1, "
               "'{}', ?, ?)", (t0, t0))  # fmt: skip
    db.execute("INSERT INTO board VALUES ('b1', 'p1', 'Main', NULL, 3, ?, ?)", (t0, t0))
    for position, (column, name, role) in enumerate((("c-backlog", "Backlog", "backlog"),
                                                     ("c-doing", "In Progress", "active"),
                                                     ("c-done", "Done", "done"))):  # fmt: skip
        db.execute('INSERT INTO "column" VALUES (?, \'b1\', ?, NULL, ?, ?, 0, NULL, ?, ?)',
                   (column, name, position, role, t0, t0))  # fmt: skip
    db.executemany(
        "INSERT INTO card (id, column_id, project_id, number, title, position, assignee, "
        "created_by, completed_at, created_at, updated_at) "
        "VALUES (?, 'c-done', 'p1', ?, ?, 0, 'claude-code', 'AGENT', ?, ?, ?)",
        [(f"card-{i}", i, f"Card {i}", t0 + i * minute + 60 * minute, t0 + i * minute,
          t0 + i * minute) for i in range(1, cards + 1)],
    )  # fmt: skip
    steps = ((None, "created", 0), ('Moved from "Backlog" to "In Progress"', "moved", 1),
             ("Edited", "updated", 2),
             ('Moved from "In Progress" to "Done"', "moved", 60))  # fmt: skip
    db.executemany(
        "INSERT INTO activity (id, card_id, action, details, actor_type, actor_name, "
        "session_id, created_at) VALUES (?, ?, ?, ?, 'AGENT', 'claude-code', ?, ?)",
        [(f"a{i}-{k}", f"card-{i}", action, details, f"mcp-{i % 500}",
          t0 + i * minute + offset * minute)
         for i in range(1, cards + 1) for k, (details, action, offset) in enumerate(steps)],
    )  # fmt: skip
    db.executemany(
        "INSERT INTO git_link VALUES (?, 'p1', ?, ?, ?, ?, 'Dev', '[\"a.py\"]', ?, ?)",
        [(f"g{i}", f"card-{i}", f"{i:07x}abc", t0 + i * minute + 58 * minute, f"Work (#{i})",
          f"mcp-{i % 500}", t0 + i * minute) for i in range(1, cards // 2 + 1)],
    )  # fmt: skip
    # one rollup per (session, model), as Pigeon keeps them
    db.executemany(
        "INSERT INTO token_usage_event VALUES (?, ?, 'p1', ?, 'claude-code', "
        "'claude-sonnet-4-5', 100, 2000, 50000, 0, 3000, 'single-in-progress', 'high', ?)",
        [(f"u{i}", f"cc-{i}", f"card-{1 + i % cards}", t0 + i * 6000)
         for i in range(cards * 2)],
    )  # fmt: skip
    db.executemany(
        "INSERT INTO tool_call_log VALUES (?, 'getBoard', 'essential', 'claude-code', ?, 'p1', "
        "120, 1, NULL, 900, ?)",
        [(f"t{i}", f"mcp-{i % 500}", t0 + i * 6000) for i in range(cards * 10)],
    )  # fmt: skip
    db.commit()
    tables = ("card", "activity", "git_link", "token_usage_event", "tool_call_log")
    counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    db.close()
    return counts


def write_repository(path: Path, commits: int) -> None:
    stream = []
    for n in range(1, commits + 1):
        message = f"Work on #{n % 500 + 1} and PAP-{n % 300 + 1}\n"
        content = f"line {n}\n"
        at = 1_780_000_000 + n * 60
        stream.append(
            f"commit refs/heads/main\nmark :{n}\nauthor Dev <dev@example.com> {at} +0000\n"
            f"committer Dev <dev@example.com> {at} +0000\ndata {len(message)}\n{message}"
            + (f"from :{n - 1}\n" if n > 1 else "")
            + f"M 644 inline f{n % 50}.txt\ndata {len(content)}\n{content}\n"
        )
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"],
                   input="".join(stream).encode(), check=True)  # fmt: skip


def timed_ingests(admin_url: str, command: list[str], env: dict[str, str],
                  again: list[str] | None = None) -> None:  # fmt: skip
    """Cold, then with nothing changed; `again`: options for a third run that reads and
    compares everything anyway (Pigeon's `--full`, past its unchanged-file check)."""
    runs = [("cold", []), ("no change", [])] + ([(" ".join(again), again)] if again else [])
    with scratch_database(admin_url, "tally_bench_store") as store_url:
        env = {**env, "TALLY_DATABASE_URL": store_url}
        subprocess.run([str(TALLY), "db", "upgrade"], env=env, check=True, capture_output=True)
        for label, options in runs:
            seconds, peak_kb = run_timed([str(TALLY), "ingest", *command, *options], env)
            print(f"  {label:10s} {seconds:7.2f} s   peak RSS {peak_kb / 1024:,.0f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1, help="Paperclip size (0 skips it)")
    parser.add_argument("--cards", type=int, default=20_000, help="Pigeon size (0 skips it)")
    parser.add_argument("--commits", type=int, default=20_000, help="git size (0 skips it)")
    parser.add_argument("--database-url", help="a superuser URL of the server to use")
    args = parser.parse_args()
    admin_url = server_url(args.database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    if args.scale:
        with scratch_database(admin_url, "tally_bench_paperclip") as paperclip_url:
            counts = fill_paperclip(_conninfo(paperclip_url), args.scale)
            print("paperclip: " + ", ".join(f"{n:,} {t}" for t, n in counts.items()))
            timed_ingests(admin_url, ["paperclip"],
                          {**env, "TALLY_PAPERCLIP_URL": _conninfo(paperclip_url)},
                          again=["--full"])  # fmt: skip
    if args.cards:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "pigeon.db"
            counts = write_pigeon(path, args.cards)
            # dated back, as an idle board's file is: a file written within two seconds of
            # a load is read again by the next one (its state could miss a write)
            long_ago = time.time_ns() - 3_600_000_000_000
            os.utime(path, ns=(long_ago, long_ago))
            print("pigeon: " + ", ".join(f"{n:,} {t}" for t, n in counts.items()))
            timed_ingests(admin_url, ["pigeon", "--db", str(path)], env, again=["--full"])
    if args.commits:
        with tempfile.TemporaryDirectory() as directory:
            write_repository(Path(directory), args.commits)
            print(f"git: {args.commits:,} commits")
            timed_ingests(admin_url, ["git", "--repo", directory], env)


if __name__ == "__main__":
    main()
