"""Correlation's time-overlap rules against a brute-force reading of their definitions, on
seeded random sessions and runs that include every edge: a session of one instant, shared
boundaries, a run still going, a failed run whose finish was never recorded (with or without
events), runs and sessions lasting days, several candidates."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ingestion.correlation import correlate

T0 = datetime(2026, 10, 1, tzinfo=UTC)
SLACK = timedelta(seconds=60)


def minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def span(rng: random.Random) -> tuple[int, int]:
    start = rng.randrange(0, 30_000)
    length = rng.choice([0, 0, 1, 5, 20, 90, 600, 3000])  # an instant to two days
    return start, start + length


def inserted(conn: psycopg.Connection, table: str, **values: object) -> int:
    """The id of a new row of `table` holding `values`."""
    columns = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    return conn.execute(
        f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING id", list(values.values())
    ).fetchone()[0]


Span = tuple[int, datetime, datetime]  # owner (agent or project), first, last


def random_sessions(conn: psycopg.Connection, rng: random.Random, company: int, count: int, *,
                    source: str, owner_column: str, owners: list[int]
                    ) -> dict[str, tuple[int, Span]]:  # fmt: skip
    """`count` sessions of `source`, each of a random owner (`owner_column`) over a random
    span: session key -> (id, span)."""
    made = {}
    for n in range(count):
        owner, (first, last) = rng.choice(owners), span(rng)
        key = f"{source}-{n}"
        session = inserted(conn, "agent_sessions", company_id=company, source=source,
                           session_key=key, first_activity_at=minutes(first),
                           last_activity_at=minutes(last), **{owner_column: owner})  # fmt: skip
        made[key] = (session, (owner, minutes(first), minutes(last)))
    return made


@pytest.fixture
def company(conninfo: str) -> int:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(
            "INSERT INTO companies (slug, name) VALUES ('c', 'c') RETURNING id"
        ).fetchone()[0]


def test_a_run_is_linked_to_the_one_session_of_its_agent_it_overlaps(conninfo, company):
    rng = random.Random(7)
    runs: dict[int, tuple[int, datetime, datetime | None]] = {}  # id -> agent, start, end
    with psycopg.connect(conninfo) as conn:
        agents = [
            inserted(conn, "agents", company_id=company, source="paperclip",
                     external_id=f"a{n}", name=f"agent {n}")
            for n in range(3)
        ]  # fmt: skip
        sessions = dict(
            random_sessions(
                conn,
                rng,
                company,
                400,
                source="claude_code",
                owner_column="agent_id",
                owners=agents,
            ).values()
        )
        for n in range(600):
            agent, (start, end) = rng.choice(agents), span(rng)
            status, finished = "succeeded", minutes(end)
            if n % 50 == 0:
                status, finished = "running", None  # still going: no end yet
            elif n % 50 == 1:
                # over, its finish never recorded: it ends at its last event, else its start
                status, finished = "failed", None
            run = inserted(
                conn,
                "heartbeat_runs",
                company_id=company,
                source="paperclip",
                external_id=f"r{n}",
                agent_id=agent,
                status=status,
                started_at=minutes(start),
                finished_at=finished,
            )
            if status == "failed" and n % 100 == 1:
                for seq, at in enumerate((start, end)):
                    inserted(conn, "heartbeat_run_events", company_id=company, run_id=run,
                             seq=seq, event_type="log", occurred_at=minutes(at))  # fmt: skip
                finished = minutes(end)
            elif status == "failed":
                finished = minutes(start)
            runs[run] = (agent, minutes(start), finished)
        correlate(conn, company)
        linked = dict(
            conn.execute(
                "SELECT id, session_id FROM heartbeat_runs WHERE session_link = 'time-overlap'"
            ).fetchall()
        )
    expected = {}
    for run_id, (agent, start, end) in runs.items():
        overlapping = [
            session_id
            for session_id, (owner, first, last) in sessions.items()
            if owner == agent and first < (end or datetime.max.replace(tzinfo=UTC)) and last > start
        ]
        if len(overlapping) == 1:
            expected[run_id] = overlapping[0]
    assert linked == expected
    assert 100 < len(expected) < len(runs) - 100, len(expected)  # both outcomes, often


def test_an_mcp_session_is_matched_to_the_one_agent_session_that_holds_it(conninfo, company):
    rng = random.Random(11)
    with psycopg.connect(conninfo) as conn:
        projects = [
            inserted(conn, "projects", company_id=company, source="pigeon", external_id=f"p{n}",
                     name=f"project {n}")
            for n in range(2)
        ]  # fmt: skip
        agent_sessions = dict(random_sessions(conn, rng, company, 300, source="claude_code",
                                              owner_column="project_id",
                                              owners=projects).values())  # fmt: skip
        mcp_sessions = {
            key: spanned
            for key, (_, spanned) in random_sessions(conn, rng, company, 300, source="pigeon_mcp",
                                                     owner_column="project_id",
                                                     owners=projects).items()
        }  # fmt: skip
        correlate(conn, company, mcp_slack_seconds=int(SLACK.total_seconds()))
        matched = dict(
            conn.execute(
                "SELECT upstream_key, session_id FROM session_correlations "
                "WHERE method = 'time-overlap+workspace'"
            ).fetchall()
        )
    expected = {}
    for key, (project, first, last) in mcp_sessions.items():
        holding = [
            session_id
            for session_id, (owner, s_first, s_last) in agent_sessions.items()
            if owner == project and s_first <= first + SLACK and s_last >= last - SLACK
        ]
        if len(holding) == 1:
            expected[key] = holding[0]
    assert matched == expected
    assert 30 < len(expected) < len(mcp_sessions) - 30, len(expected)


def test_a_session_belongs_to_the_deepest_workspace_that_holds_its_directory(conninfo, company):
    """A workspace holds its own directory and those below it, whatever characters its path
    has: `_` and `%` are no wildcards (`/w/my_app` does not hold `/w/myXapp`)."""
    with psycopg.connect(conninfo) as conn:
        workspaces = {}
        for name, path in (("app", "/w/my_app"), ("api", "/w/my_app/api/"), ("all", "/"),
                           ("pct", "/w/100%")):  # fmt: skip
            workspaces[name] = inserted(
                conn,
                "projects",
                company_id=company,
                source="pigeon",
                external_id=name,
                name=name,
                workspace_path=path,
            )
        sessions = {
            "/w/my_app": "app", "/w/my_app/": "app", "/w/my_app/src/x": "app",
            "/w/my_app/api": "api", "/w/my_app/api/v2": "api", "/w/myXapp/src": "all",
            "/w/my_apple": "all", "/w/100%": "pct", "/w/1000": "all", "relative/dir": None,
        }  # fmt: skip
        for n, path in enumerate(sessions):
            inserted(
                conn,
                "agent_sessions",
                company_id=company,
                source="claude_code",
                session_key=f"s{n}",
                project_path=path,
            )
        correlate(conn, company)
        found = dict(
            conn.execute(
                "SELECT project_path, project_id FROM agent_sessions WHERE company_id = %s",
                (company,),
            ).fetchall()
        )
    assert found == {path: workspaces.get(name) for path, name in sessions.items()}


def test_a_time_overlap_link_that_no_longer_holds_alone_is_withdrawn(conninfo, company):
    """A run overlapping one session of its agent is linked to it; once a second session of
    the agent overlaps it too, or the run is found to have ended before the session began
    (a lost run, read as running on by an older tally), the link is a guess, and goes."""
    with psycopg.connect(conninfo) as conn:
        agent = inserted(conn, "agents", company_id=company, source="paperclip",
                         external_id="a", name="agent")  # fmt: skip

        def session(key: str, first: int, last: int) -> int:
            return inserted(conn, "agent_sessions", company_id=company, source="claude_code",
                            session_key=key, agent_id=agent, first_activity_at=minutes(first),
                            last_activity_at=minutes(last))  # fmt: skip

        def link(run: int) -> tuple:
            return conn.execute(
                "SELECT session_id, session_link FROM heartbeat_runs WHERE id = %s", (run,)
            ).fetchone()

        first = session("s1", 10, 50)
        run = inserted(conn, "heartbeat_runs", company_id=company, source="paperclip",
                       external_id="r", agent_id=agent, status="succeeded",
                       started_at=minutes(0), finished_at=minutes(60))  # fmt: skip
        correlate(conn, company)
        assert link(run) == (first, "time-overlap")
        session("s2", 30, 90)  # another session of the agent during the run
        correlate(conn, company)
        assert link(run) == (None, None)
        lost = inserted(conn, "heartbeat_runs", company_id=company, source="paperclip",
                        external_id="lost", agent_id=agent, status="failed",
                        started_at=minutes(200))  # fmt: skip
        later = session("s3", 300, 400)
        conn.execute(  # as the old rule, which read the lost run as running on, linked it
            "UPDATE heartbeat_runs SET session_id = %s, session_link = 'time-overlap' "
            "WHERE id = %s",
            (later, lost),
        )
        correlate(conn, company)
        assert link(lost) == (None, None)
        assert correlate(conn, company).runs == 0  # settled
