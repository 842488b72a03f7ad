"""`tally ingest paperclip` from a PostgreSQL database with Paperclip's shapes into a real
canonical store."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import psycopg
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from ingestion.sources import CLAUDE_CODE
from pipelines.cli.main import app
from tests.builders import assistant, usage, user_text, write_jsonl
from tests.ingest_helpers import ingest
from tests.paperclip_fixture import build_paperclip_db

runner = CliRunner()
TABLES = ("agents", "goals", "projects", "issues", "issue_status_changes", "issue_activity",
          "heartbeat_runs", "heartbeat_run_events", "cost_events", "finance_events",
          "budget_policies", "budget_incidents", "approvals", "ingestion_rejects")  # fmt: skip


@pytest.fixture
def paperclip_url(pg_server_url):
    name = f"paperclip_{uuid.uuid4().hex[:10]}"
    admin = make_url(pg_server_url).set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.set(database=name).render_as_string(False)
    build_paperclip_db(url)
    yield url
    with psycopg.connect(admin.render_as_string(False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_ingest(url: str, *extra: str) -> str:
    result = runner.invoke(app, ["ingest", "paperclip", "--url", url, *extra])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def counts(conninfo: str) -> dict[str, int]:
    with psycopg.connect(conninfo) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_several_companies_need_a_choice(tally_env, paperclip_url):
    result = runner.invoke(app, ["ingest", "paperclip", "--url", paperclip_url])
    assert result.exit_code == 2
    assert "PAP (Acme), OTH (Other)" in " ".join(result.output.split())


def test_a_url_that_is_not_postgresqls_is_refused_before_connecting(tally_env):
    for url in ("sqlite:///paperclip.db", "postgresql://host/db?nonsense=1"):
        result = runner.invoke(app, ["ingest", "paperclip", "--url", url])
        said = " ".join(result.output.replace("│", " ").split())
        assert result.exit_code == 2, said
        assert f"Invalid value for --url: '{url}' is not a" in said


def test_a_database_that_is_not_paperclips_fails_clearly(tally_env, paperclip_url):
    with psycopg.connect(paperclip_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE companies RENAME COLUMN issue_prefix TO prefix")
    result = runner.invoke(app, ["ingest", "paperclip", "--url", paperclip_url, "--company", "PAP"])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, said
    assert "cannot read Paperclip's database" in said and "issue_prefix" in said
    with psycopg.connect(paperclip_url, autocommit=True) as conn:
        conn.execute("DROP TABLE companies CASCADE")
    result = runner.invoke(app, ["ingest", "paperclip", "--url", paperclip_url])
    assert result.exit_code == 2
    assert "not a Paperclip database: it has no companies table" in result.output


def test_loads_the_work_graph_and_ledger_once(tally_env, paperclip_url, conninfo):
    said = run_ingest(paperclip_url, "--company", "PAP")
    assert "rows rejected" in said
    with psycopg.connect(conninfo) as conn:
        issues = conn.execute(
            "SELECT identifier, number, status FROM issues ORDER BY number"
        ).fetchall()
        assert issues == [("PAP-1", 1, "done"), ("PAP-2", 2, "in_progress")]  # not OTH-1
        history = conn.execute(
            """SELECT i.identifier, c.from_status, c.to_status, c.actor_type
               FROM issue_status_changes c JOIN issues i ON i.id = c.issue_id
               ORDER BY i.identifier, c.changed_at"""
        ).fetchall()
        assert history == [
            ("PAP-1", "todo", "in_progress", "agent"),  # from the activity log
            ("PAP-1", "in_progress", "done", "agent"),
            ("PAP-2", None, "todo", "lifecycle"),  # no history recorded: from its timestamps
            ("PAP-2", "todo", "in_progress", "lifecycle"),
        ]
        upstream = conn.execute(
            "SELECT attributes->'paperclip'->>'name', attributes->'paperclip'->>'issue_prefix' "
            "FROM companies WHERE slug = 'local'"
        ).fetchone()
        assert upstream == ("Acme", "PAP")
        goal = conn.execute(
            """SELECT g.title, parent.title FROM projects p JOIN goals g ON g.id = p.goal_id
               JOIN goals parent ON parent.id = g.parent_id"""
        ).fetchone()
        assert goal == ("Bill customers", "Launch")
        run = conn.execute(
            """SELECT r.status, r.adapter_session_key, i.identifier, a.name, count(e.id)
               FROM heartbeat_runs r JOIN issues i ON i.id = r.issue_id
               JOIN agents a ON a.id = r.agent_id
               LEFT JOIN heartbeat_run_events e ON e.run_id = r.id GROUP BY 1, 2, 3, 4"""
        ).fetchall()
        assert run == [("succeeded", "cc-run-1", "PAP-1", "Eng", 2)]
        cost = conn.execute("SELECT cost_usd, billing_type FROM cost_events").fetchall()
        assert cost == [(Decimal("1.230000000000"), "metered_api")]
        policy = conn.execute(
            """SELECT p.scope_type, a.name, p.window_kind, p.metric, p.amount, i.kind
               FROM budget_policies p JOIN agents a ON a.id = p.scope_id
               JOIN budget_incidents i ON i.policy_id = p.id"""
        ).fetchone()
        assert policy == ("agent", "Eng", "calendar_month", "usd", Decimal("100.000000000000"),
                          "soft")  # fmt: skip
        rejects = dict(conn.execute(
            "SELECT location || ' ' || position, reason FROM ingestion_rejects"
        ).fetchall())  # fmt: skip
    reasons = " | ".join(f"{k}: {v}" for k, v in sorted(rejects.items()))
    for expected in ("unknown status 'wontfix'", "unknown status 'exploded'",
                     "is not an issue of the company", "was not loaded",
                     "cost_cents is missing or negative", "unknown window 'weekly'",
                     "unknown status 'maybe'", "unknown status in change None -> 'limbo'",
                     "issue '00000000-0000-4000-8000-000000000098' does not exist"):  # fmt: skip
        assert expected in reasons, reasons
    assert len(rejects) == 9

    before = counts(conninfo)
    again = run_ingest(paperclip_url, "--company", "Acme", "--full")  # read and compared
    assert "rows rejected" in again
    assert counts(conninfo) == before
    with psycopg.connect(conninfo) as conn:
        changed = conn.execute(
            "SELECT events_new FROM ingestion_runs WHERE source = 'paperclip' ORDER BY id DESC"
        ).fetchone()[0]
    assert changed == 0


def test_a_runs_events_are_read_again_only_when_the_log_grew(tally_env, paperclip_url, conninfo):
    """Run events are a log: a run whose events upstream number and end as the stored ones is
    not read again; an event appended to one run brings that run's events, and only those."""
    from tests.paperclip_fixture import ACME, ENGINEER, RUN_1, insert

    def events_read() -> int:
        said = run_ingest(paperclip_url, "--company", "PAP")
        match = re.search(r"heartbeat_run_events[ │|]+([\d,]+)", said)
        return int(match.group(1).replace(",", "")) if match else 0

    def stored() -> list[tuple[int, str]]:
        with psycopg.connect(conninfo) as conn:
            return conn.execute(
                """SELECT e.seq, e.message FROM heartbeat_run_events e
                   JOIN heartbeat_runs r ON r.id = e.run_id ORDER BY 1"""
            ).fetchall()

    assert events_read() == 2  # RUN_1's (the third, of a rejected run, is rejected)
    assert stored() == [(1, "step 1"), (2, "step 2")]
    assert events_read() == 0
    with psycopg.connect(paperclip_url, autocommit=True) as conn:
        insert(conn, "heartbeat_run_events", company_id=ACME, run_id=RUN_1, agent_id=ENGINEER,
               seq=3, event_type="lifecycle", message="step 3")  # fmt: skip
    assert events_read() == 3
    assert stored() == [(1, "step 1"), (2, "step 2"), (3, "step 3")]
    assert events_read() == 0


def test_rows_written_during_the_read_wait_for_the_next_run(
    tally_env, paperclip_url, conninfo, monkeypatch
):
    """Paperclip is live while tally reads it: an issue and its activity written after the
    issues were read must not make the activity a reject ("issue ... does not exist
    upstream"); every table is read from one snapshot, and the next run loads both."""
    from ingestion.adapters import paperclip
    from tests.paperclip_fixture import ACME, BILLING, insert, uid

    read_issues = paperclip._issues

    def issues_then_a_write(*args):
        found = read_issues(*args)
        with psycopg.connect(paperclip_url, autocommit=True) as conn:
            insert(conn, "issues", id=uid(147), company_id=ACME, project_id=BILLING,
                   issue_number=7, identifier="PAP-7", title="Late", status="todo")  # fmt: skip
            insert(conn, "activity_log", id=uid(177), company_id=ACME, actor_type="user",
                   actor_id="u1", action="issue.comment_added", entity_type="issue",
                   entity_id=uid(147))  # fmt: skip
        return found

    monkeypatch.setattr(paperclip, "_issues", issues_then_a_write)
    run_ingest(paperclip_url, "--company", "PAP")
    monkeypatch.setattr(paperclip, "_issues", read_issues)

    def state() -> tuple[list[str], list[str], list[str]]:
        with psycopg.connect(conninfo) as conn:
            identifiers = [i for (i,) in conn.execute("SELECT identifier FROM issues ORDER BY 1")]
            activity = [
                a
                for (a,) in conn.execute(
                    "SELECT external_id FROM issue_activity WHERE external_id = %s", (uid(177),)
                )
            ]
            rejects = [
                p
                for (p,) in conn.execute(
                    "SELECT position FROM ingestion_rejects WHERE position = %s", (uid(177),)
                )
            ]
        return identifiers, activity, rejects  # fmt: skip

    assert state() == (["PAP-1", "PAP-2"], [], [])
    run_ingest(paperclip_url, "--company", "PAP")
    assert state() == (["PAP-1", "PAP-2", "PAP-7"], [uid(177)], [])


def test_a_status_change_of_any_json_shape_is_rejected_not_fatal(
    tally_env, paperclip_url, conninfo
):
    """Activity details are free JSON: a status that is a list or an object is no status."""
    from tests.paperclip_fixture import ACME, insert, uid

    with psycopg.connect(paperclip_url, autocommit=True) as conn:
        pap_1 = conn.execute("SELECT id FROM issues WHERE identifier = 'PAP-1'").fetchone()[0]
        for n, details in (
            (191, {"status": {"from": "todo", "to": ["done"]}}),
            (192, {"changes": {"status": {"from": {"x": 1}, "to": "done"}}}),
        ):
            insert(conn, "activity_log", id=uid(n), company_id=ACME, actor_type="user",
                   actor_id="u1", action="issue.updated", entity_type="issue",
                   entity_id=pap_1, details=details)  # fmt: skip
    run_ingest(paperclip_url, "--company", "PAP")
    with psycopg.connect(conninfo) as conn:
        reasons = dict(conn.execute(
            "SELECT position, reason FROM ingestion_rejects WHERE source = 'paperclip'"
        ).fetchall())  # fmt: skip
        statuses = conn.execute("SELECT identifier, status FROM issues ORDER BY 1").fetchall()
    assert reasons[uid(191)] == "unknown status in change 'todo' -> ['done']"
    assert reasons[uid(192)] == "unknown status in change {'x': 1} -> 'done'"
    assert statuses == [("PAP-1", "done"), ("PAP-2", "in_progress")]


def test_values_python_cannot_hold_reject_their_row_not_the_read(
    tally_env, paperclip_url, conninfo
):
    """PostgreSQL keeps times of `infinity`, before year 1 and after 9999, and jsonb numbers of
    400 digits. One such time failed the whole read (blaming the table's shape): its row is
    rejected naming the column and the value; a huge JSON number is kept as it is, and so is a
    row that holds one and is rejected for another reason. A row naming a rejected row says
    that it was rejected."""
    from tests.paperclip_fixture import ACME, BILLING, ENGINEER, insert, uid

    with psycopg.connect(paperclip_url, autocommit=True) as conn:
        insert(conn, "issues", id=uid(144), company_id=ACME, project_id=BILLING, issue_number=4,
               identifier="PAP-4", title="Forever", status="done", created_at="2026-11-03",
               completed_at="infinity")  # fmt: skip
        insert(conn, "activity_log", id=uid(174), company_id=ACME, actor_type="user",
               actor_id="u1", action="issue.comment_added", entity_type="issue",
               entity_id=uid(144), created_at="2026-11-03T12:00:00Z")  # fmt: skip
        insert(conn, "heartbeat_runs", id=uid(154), company_id=ACME, agent_id=ENGINEER,
               status="succeeded", started_at="0044-03-15 BC")  # fmt: skip
        insert(conn, "heartbeat_runs", id=uid(155), company_id=ACME, agent_id=ENGINEER,
               status="succeeded", started_at="2026-11-03T15:00:00Z",
               finished_at="294276-01-01")  # fmt: skip
        for n, status in ((156, "succeeded"), (157, "vanished")):
            conn.execute(
                """INSERT INTO heartbeat_runs (id, company_id, agent_id, status, started_at,
                       usage_json) VALUES (%s, %s, %s, %s, '2026-11-03T16:00:00Z',
                       '{"inputTokens": 1e400}')""",
                (uid(n), ACME, ENGINEER, status),
            )
    run_ingest(paperclip_url, "--company", "PAP")
    with psycopg.connect(conninfo) as conn:
        reasons = dict(conn.execute(
            "SELECT position, reason FROM ingestion_rejects WHERE source = 'paperclip'"
        ).fetchall())  # fmt: skip
        usage = conn.execute(
            "SELECT usage->>'inputTokens' FROM heartbeat_runs WHERE external_id = %s", (uid(156),)
        ).fetchone()
        issues = [i for (i,) in conn.execute("SELECT identifier FROM issues ORDER BY 1")]
    assert reasons[uid(144)] == (
        "completed_at holds 'infinity', which is no timestamptz tally can read"
    )
    assert reasons[uid(154)] == (
        "started_at holds '0044-03-15 00:00:00+00 BC', which is no timestamptz tally can read"
    )
    assert reasons[uid(155)].startswith("finished_at holds '294276-01-01")
    assert reasons[uid(157)] == "unknown status 'vanished'"
    # what names a rejected row says so, rather than that the row does not exist
    assert reasons[uid(174)] == f"issue {uid(144)!r} was rejected (its own reject says why)"
    assert usage == ("1" + "0" * 400,)
    assert issues == ["PAP-1", "PAP-2"]


def test_a_value_python_cannot_hold_midway_keeps_every_row_before_and_after_it(
    paperclip_url, monkeypatch
):
    """Rows are converted a batch at a time; at the first value the fast loaders refuse, the
    rest is read leniently from where they stopped: no row is lost or read twice."""
    from ingestion.adapters import paperclip
    from tests.paperclip_fixture import ACME, ENGINEER, insert, uid

    monkeypatch.setattr(paperclip, "FETCH_ROWS", 2)
    with psycopg.connect(paperclip_url, autocommit=True) as conn:
        for n in range(160, 170):  # runs of 2026-11-04, after the fixture's
            started = "infinity" if n == 165 else f"2026-11-04T{n - 150:02d}:00:00Z"
            insert(conn, "heartbeat_runs", id=uid(n), company_id=ACME, agent_id=ENGINEER,
                   status="succeeded", started_at=started,
                   created_at=f"2026-11-04T{n - 150:02d}:00:00Z")  # fmt: skip
    graph = paperclip.read_paperclip(paperclip_url, "PAP")
    runs = [r["external_id"] for r in graph.heartbeat_runs if r["external_id"] >= uid(160)]
    assert runs == [uid(n) for n in range(160, 170) if n != 165]  # each once, in order
    assert [r.row_id for r in graph.rejects if "started_at holds" in r.reason] == [uid(165)]


def test_json_columns_of_any_shape_are_read_not_fatal(tally_env, paperclip_url, conninfo):
    """jsonb holds any JSON: an agent's adapter_config that is an array failed the whole read
    (AttributeError); the agent is kept without its working directory and the reject says
    why. A run's context, usage and an approval's payload of other shapes load as they are."""
    from tests.paperclip_fixture import ENGINEER

    with psycopg.connect(paperclip_url, autocommit=True) as conn:
        conn.execute("UPDATE agents SET adapter_config = '[1, 2]' WHERE id = %s", (ENGINEER,))
        conn.execute("""UPDATE heartbeat_runs SET context_snapshot = '"just text"',
                            usage_json = '[1]'""")  # fmt: skip
        conn.execute("UPDATE activity_log SET details = '[\"x\"]'")
        conn.execute("""UPDATE approvals SET payload = '"text"'""")
    said = run_ingest(paperclip_url, "--company", "PAP")
    assert "agents │ 2" in said or "agents 2" in said
    with psycopg.connect(conninfo) as conn:
        reasons = dict(conn.execute(
            "SELECT position, reason FROM ingestion_rejects WHERE source = 'paperclip'"
        ).fetchall())  # fmt: skip
        engineer = conn.execute(
            "SELECT name, attributes->>'cwd' FROM agents WHERE external_id = %s", (ENGINEER,)
        ).fetchone()
        runs = conn.execute("SELECT count(*) FROM heartbeat_runs").fetchone()
    assert reasons[ENGINEER] == (
        "adapter_config is a JSON list, not an object; the agent is kept without its working "
        "directory"
    )
    assert engineer == ("Eng", None)
    assert runs[0] >= 1


def ingest_the_runs_transcript(tally_env, conninfo: str) -> None:
    """The transcript of RUN_1's adapter session, cc-run-1: one request, during the run."""
    claude = tally_env / "claude" / "projects"
    write_jsonl(claude / "-srv-billing" / "cc-run-1.jsonl", [
        user_text("2026-11-03T10:00:05.000Z", session="cc-run-1"),
        assistant("m1", "r1", "2026-11-03T10:10:00.000Z", usage(), session="cc-run-1"),
    ])  # fmt: skip
    ingest(conninfo, CLAUDE_CODE, claude)


def test_a_run_links_its_transcript_session_and_agent(tally_env, paperclip_url, conninfo):
    ingest_the_runs_transcript(tally_env, conninfo)
    said = run_ingest(paperclip_url, "--company", "PAP")
    assert "1 run-session links" in said
    with psycopg.connect(conninfo) as conn:
        linked = conn.execute(
            """SELECT r.session_link, s.session_key, a.name, s.agent_link
               FROM heartbeat_runs r JOIN agent_sessions s ON s.id = r.session_id
               JOIN agents a ON a.id = s.agent_id"""
        ).fetchone()
        assert linked == ("adapter-session-id", "cc-run-1", "Eng", "heartbeat-run")
        touched = conn.execute(
            """SELECT count(*) FROM issue_activity WHERE session_key = 'cc-run-1'"""
        ).fetchone()[0]
        assert touched == 3  # every action of the run is a touch by its session


@pytest.mark.filterwarnings("ignore::dagster.BetaWarning")
def test_a_runs_issue_attributes_its_sessions_requests(tally_env, paperclip_url, db_url,
                                                       conninfo, tmp_path):  # fmt: skip
    """End to end: the run's adapter session is the transcript; its requests during the run
    are explicit for the run's issue, later ones follow the board as of their time."""
    import dagster as dg

    from assets.attribution.assets import usage_attributed
    from assets.pricing.assets import usage_priced
    from assets.sources import token_usage_events
    from ingestion.warehouse.base import open_warehouse
    from pipelines.resources import build_resources

    claude = tally_env / "claude" / "projects"
    turns = {"m-run": "10:10", "m-after": "11:30", "m-later": "14:30"}
    write_jsonl(claude / "-srv-billing" / "cc-run-1.jsonl", [
        user_text("2026-11-03T10:00:05.000Z", session="cc-run-1"),
        *[assistant(m, f"r-{m}", f"2026-11-03T{at}:00.000Z", usage(), session="cc-run-1")
          for m, at in turns.items()],
    ])  # fmt: skip
    ingest(conninfo, CLAUDE_CODE, claude)
    run_ingest(paperclip_url, "--company", "PAP")
    warehouse_url = f"duckdb://{tmp_path / 'warehouse.duckdb'}"
    result = dg.materialize(
        [token_usage_events, usage_priced, usage_attributed],
        selection=["usage_priced", "usage_attributed"],
        resources=build_resources(database_url=db_url, warehouse_url=warehouse_url),
        partition_key="2026-11-03",
    )
    assert result.success
    rows = open_warehouse(warehouse_url).query(
        "SELECT message_id, issue_identifier, signal, reason, hint_id FROM usage_attributed "
        "ORDER BY occurred_at"
    )
    decided = {r["message_id"]: (r["issue_identifier"], r["signal"], r["reason"])
               for r in rows.iter_rows(named=True)}  # fmt: skip
    assert decided == {
        "m-run": ("PAP-1", "explicit", None),  # during the run, for the run's issue
        "m-after": (None, "unattributed", "stale"),  # PAP-1 done at 11:00, nothing else open
        "m-later": ("PAP-2", "single-in-progress", None),  # Eng's issue in progress since 14:00
    }
    assert rows.filter(rows["message_id"] == "m-run")["hint_id"][0].startswith("run:")


def test_a_company_as_it_was_at_its_last_load_is_not_read_again(
    tally_env, paperclip_url, conninfo, monkeypatch
):
    """The hourly ingest of an idle company read and compared every row (13-20 s at 50,000
    issues); a digest of its rows, taken in the snapshot the read would use, now stands in.
    Any insert, update or delete of a row a load reads, in any table, reads it again."""
    from tests.paperclip_fixture import ACME, insert, uid

    def runs() -> int:
        with psycopg.connect(conninfo) as conn:
            return conn.execute(
                "SELECT count(*) FROM ingestion_runs WHERE source = 'paperclip'"
            ).fetchone()[0]

    def change(sql: str, *params: object) -> None:
        with psycopg.connect(paperclip_url, autocommit=True) as conn:
            conn.execute(sql, params)

    assert "unchanged" not in run_ingest(paperclip_url, "--company", "PAP")
    skipped = run_ingest(paperclip_url, "--company", "PAP")
    assert "paperclip: unchanged since its last load (run 1), nothing read" in skipped
    assert runs() == 1
    # an update in a table the graph reads whole, a delete, an insert into a ledger table
    change("UPDATE issues SET title = title || ' (renamed)' WHERE identifier = 'PAP-2'")
    assert "unchanged" not in run_ingest(paperclip_url, "--company", "PAP")
    with psycopg.connect(conninfo) as conn:
        assert (
            conn.execute("SELECT title FROM issues WHERE identifier = 'PAP-2'")
            .fetchone()[0]
            .endswith(" (renamed)")
        )
    assert "unchanged since its last load" in run_ingest(paperclip_url, "--company", "PAP")
    change("DELETE FROM budget_incidents")
    assert "unchanged" not in run_ingest(paperclip_url, "--company", "PAP")
    with psycopg.connect(paperclip_url, autocommit=True) as conn:
        insert(conn, "finance_events", id=uid(700), company_id=ACME, event_kind="platform_fee",
               direction="debit", biller="anthropic", amount_cents=500,
               occurred_at="2026-11-03T10:00:00Z")  # fmt: skip
    assert "unchanged" not in run_ingest(paperclip_url, "--company", "PAP")
    # another company's rows are no change to this one's
    change("UPDATE issues SET title = 'x' WHERE identifier = 'OTH-1'")
    assert "unchanged since its last load" in run_ingest(paperclip_url, "--company", "PAP")
    # --full reads it whatever; so does another tally company, or another reader version
    assert "unchanged" not in run_ingest(paperclip_url, "--company", "PAP", "--full")
    monkeypatch.setattr("ingestion.adapters.paperclip.READER_VERSION", 2)
    assert "unchanged" not in run_ingest(paperclip_url, "--company", "PAP")
    assert "unchanged since its last load" in run_ingest(paperclip_url, "--company", "PAP")


def test_the_ledger_paperclip_booked_beside_what_the_transcripts_cost(tally_env, paperclip_url,
                                                                      conninfo):  # fmt: skip
    """Finance reads Paperclip's spend and tally's: the cost events were stored and shown
    nowhere. `tally report reconcile` puts the ledger's runs, tokens and cost beside tally's
    billed cost of the same agent's requests, and the difference."""
    import orjson

    ingest_the_runs_transcript(tally_env, conninfo)

    def report(*args: str) -> tuple[list[dict], str]:
        result = runner.invoke(app, ["report", *args, "--format", "json"])
        assert result.exit_code == 0, result.output
        return orjson.loads(result.stdout), " ".join(result.stderr.split())

    rows, said = report("reconcile")
    assert "no upstream cost ledger" in said and "tally ingest paperclip" in said
    assert rows == []  # the session has no agent yet: nothing Paperclip could have booked
    run_ingest(paperclip_url, "--company", "PAP")
    (by_agent,), said = report("reconcile")
    (costs,), _ = report("costs", "--by", "agent")
    assert costs["agent"] == by_agent["agent"] == "Eng"
    assert (by_agent["upstream_runs"], by_agent["upstream_entries"]) == (1, 1)
    assert Decimal(by_agent["upstream_cost_usd"]) == Decimal("1.23")
    assert (by_agent["upstream_input_tokens"], by_agent["upstream_output_tokens"]) == (10, 20)
    assert by_agent["requests"] == 1
    billed = Decimal(by_agent["billed_cost_usd"])
    assert billed == Decimal(costs["billed_cost_usd"]) > 0
    assert Decimal(by_agent["difference_usd"]) == billed - Decimal("1.23")
    (by_day,), _ = report("reconcile", "--by", "day")
    assert by_day["day"] == "2026-11-03" and by_day["difference_usd"] == by_agent["difference_usd"]
    assert report("reconcile", "--since", "2026-11-04")[0] == []
