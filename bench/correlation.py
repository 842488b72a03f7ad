"""Correlation cost on a store that has grown.

Every ingest that reads a file correlates the company again (sessions with projects, agents,
heartbeat runs and MCP sessions; commits with the sessions that printed them). This fills a
fresh database server-side with N agent sessions of one agent in one project, N heartbeat
runs of that agent, N/2 MCP sessions of the project, N*2.5 commits and N/2 tool calls that
printed a commit hash, then times each rule on the first run and on a second run that
changes nothing (what every later ingest pays).

    .venv/bin/python bench/correlation.py [--sessions 20000] [--database-url URL]

The database is created on TALLY_BENCH_DATABASE_URL's server, else the local server on
127.0.0.1:5432, else the embedded one, and dropped afterwards.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import _conninfo, scratch_database, server_url  # type: ignore[import-not-found]  # noqa: E402

from ingestion import correlation  # noqa: E402
from schemas.migrations.runner import upgrade  # noqa: E402

RULES = ("PROJECT_BY_WORKSPACE", "IDENTITY", "PROJECT_FROM_ROOT", "RUN_BY_ADAPTER_SESSION",
         "RUN_BY_OVERLAP", "AGENT_FROM_RUN", "MCP_SESSIONS", "COMMIT_BY_TOOL_CALL")  # fmt: skip

FILL = """
INSERT INTO companies (slug, name) VALUES ('bench', 'bench');
INSERT INTO agents (company_id, source, external_id, name)
SELECT id, 'paperclip', 'agent-1', 'agent' FROM companies;
INSERT INTO projects (company_id, source, external_id, name, workspace_path)
SELECT id, 'pigeon', 'project-1', 'shop', '/work/shop' FROM companies;
-- a session every 10 minutes, 8 minutes long (every 13th runs two hours longer)
INSERT INTO agent_sessions (company_id, source, session_key, project_path, agent_id,
                            first_activity_at, last_activity_at)
SELECT c.id, 'claude_code', 's' || g, '/work/shop/app', a.id,
       timestamptz '2026-01-01' + g * interval '10 minutes',
       timestamptz '2026-01-01' + g * interval '10 minutes' + interval '8 minutes'
         + CASE WHEN g %% 13 = 0 THEN interval '2 hours' ELSE interval '0' END
FROM companies AS c, agents AS a, generate_series(1, %(n)s) AS g;
-- a heartbeat run of five minutes in each session, with no adapter session id
INSERT INTO heartbeat_runs (company_id, source, external_id, agent_id, status, started_at,
                            finished_at)
SELECT c.id, 'paperclip', 'run' || g, a.id, 'succeeded',
       timestamptz '2026-01-01' + g * interval '10 minutes' + interval '1 minute',
       timestamptz '2026-01-01' + g * interval '10 minutes' + interval '6 minutes'
FROM companies AS c, agents AS a, generate_series(1, %(n)s) AS g;
-- an MCP session within every other session
INSERT INTO agent_sessions (company_id, source, session_key, project_id, first_activity_at,
                            last_activity_at)
SELECT c.id, 'pigeon_mcp', 'mcp' || g, p.id,
       timestamptz '2026-01-01' + g * interval '20 minutes' + interval '1 minute',
       timestamptz '2026-01-01' + g * interval '20 minutes' + interval '5 minutes'
FROM companies AS c, projects AS p, generate_series(1, %(n)s / 2) AS g;
INSERT INTO git_commits (company_id, repo, hash, committed_at, message)
SELECT c.id, '/work/shop', md5(g::text) || substr(md5((g + 1)::text), 1, 8),
       timestamptz '2026-01-01' + g * interval '4 minutes', 'work'
FROM companies AS c, generate_series(1, %(n)s * 5 / 2) AS g;
INSERT INTO tool_calls (company_id, source, call_key, session_id, tool_name, commit_hashes)
SELECT s.company_id, 'claude_code', 'call' || s.id, s.id, 'Bash',
       ARRAY[substr(md5((row_number() OVER (ORDER BY s.id) * 5)::text), 1, 7)]
FROM agent_sessions AS s WHERE s.source = 'claude_code' AND s.id %% 2 = 0;
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    admin = server_url(args.database_url)
    with scratch_database(admin) as url:
        upgrade(url)
        with psycopg.connect(_conninfo(url)) as conn:
            for statement in FILL.split(";\n"):
                if statement.strip():
                    conn.execute(statement, {"n": args.sessions})  # type: ignore[arg-type]
            conn.commit()
            conn.execute("ANALYZE")
            company = conn.execute("SELECT id FROM companies").fetchone()[0]  # type: ignore[index]
            params = {"company": company, "slack": timedelta(seconds=60)}
            print(f"{args.sessions:,} sessions and runs, {args.sessions // 2:,} MCP sessions, "
                  f"{args.sessions * 5 // 2:,} commits")  # fmt: skip
            # as correlate() runs them: without JIT, which the planner's estimates would start
            conn.execute("SELECT set_config('jit', 'off', false)")
            for label in ("first run", "no-change run"):
                total, timings = 0.0, []
                for rule in RULES:
                    started = time.perf_counter()
                    changed = conn.execute(getattr(correlation, rule), params).rowcount
                    elapsed = time.perf_counter() - started
                    total += elapsed
                    timings.append(f"{rule} {elapsed:.2f} s ({changed:,})")
                conn.commit()
                print(f"{label}: {total:.2f} s in all; " + ", ".join(timings))


if __name__ == "__main__":
    main()
