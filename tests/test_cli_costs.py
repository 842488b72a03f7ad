"""`tally materialize`, `tally report costs` and `tally prices` against a real database and a
temporary warehouse."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import orjson
import psycopg
import pytest
from typer.testing import CliRunner

from ingestion.demo.corpus import generate_corpus
from pipelines.cli.main import app
from tests.builders import assistant, usage, write_jsonl

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::dagster.BetaWarning")]
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def costed(tally_env):
    corpus = generate_corpus(tally_env, megabytes=1, seed=9, days=10)
    # one request of a model no price list knows
    write_jsonl(
        tally_env / "claude" / "projects" / "p" / "mystery.jsonl",
        [
            assistant(
                "m_x",
                "r_x",
                "2026-10-03T12:00:00Z",
                usage(input_tokens=5, output=7, cache_read=0),
                model="claude-mystery-1",
            ),
        ],
    )
    assert invoke("ingest", "all").exit_code == 0
    result = invoke("materialize")
    assert result.exit_code == 0, result.output
    return corpus


def test_costs_by_every_grouping_keep_the_contract(costed):
    days = orjson.loads(invoke("report", "costs", "--by", "day", "--format", "json").stdout)
    assert days and {
        "day",
        "requests",
        "input_tokens",
        "cost_usd",
        "pricing_status",
        "first_at",
        "last_at",
    } <= set(days[0])
    assert all(isinstance(row["cost_usd"], str) for row in days)
    assert sum(row["requests"] for row in days) == costed.truth.totals()["requests"] + 1
    total = sum(Decimal(row["cost_usd"]) for row in days)
    for by, key in (
        ("week", "week"),
        ("month", "month"),
        ("project", "project"),
        ("agent", "agent"),
        ("session", "session_id"),
        ("model", "model"),
    ):
        rows = orjson.loads(invoke("report", "costs", "--by", by, "--format", "json").stdout)
        assert rows and key in rows[0], by
        assert sum(Decimal(r["cost_usd"]) for r in rows) == total, by
    models = {
        r["model"]: r
        for r in orjson.loads(invoke("report", "costs", "--by", "model", "--format", "json").stdout)
    }
    assert models["claude-mystery-1"]["pricing_status"] == "unpriced"
    assert Decimal(models["claude-mystery-1"]["cost_usd"]) == 0
    blocks = orjson.loads(invoke("report", "costs", "--by", "block", "--format", "json").stdout)
    assert blocks and sum(b["requests"] for b in blocks) == sum(r["requests"] for r in days)
    iso = orjson.loads(invoke("report", "costs", "--by", "week", "--week-start", "monday",
                              "--format", "json").stdout)  # fmt: skip
    assert {date.fromisoformat(r["week"]).isoweekday() for r in iso} == {1}
    assert sum(Decimal(r["cost_usd"]) for r in iso) == total


def test_cost_modes(costed):
    def total(mode: str) -> Decimal:
        rows = orjson.loads(
            invoke("report", "costs", "--by", "month", "--mode", mode, "--format", "json").stdout
        )
        return sum(Decimal(r["cost_usd"]) for r in rows)

    calculate, display, auto = total("calculate"), total("display"), total("auto")
    assert calculate > 0 and display > 0  # the demo's old transcripts carry costUSD
    assert display < auto and auto != calculate


@pytest.mark.parametrize("mode", ["auto", "calculate", "display"])
def test_every_grouping_totals_the_same_cost_in_each_mode(costed, mode):
    """Finance reads one window by project, by issue and by billing block: in `auto` the
    blocks and the work items once took the computed cost where a tool had reported one,
    while the day and project rollups took the reported cost, as ccusage does."""

    def total(by: str) -> Decimal:
        out = invoke("report", "costs", "--by", by, "--mode", mode, "--format", "json").stdout
        return sum((Decimal(r["cost_usd"] or 0) for r in orjson.loads(out)), Decimal(0))

    totals = {by: total(by) for by in ("month", "project", "block", "issue", "goal")}
    assert totals["month"] > 0
    assert set(totals.values()) == {totals["month"]}, totals


def test_html_report_is_self_contained_and_calls_out_unpriced_usage(costed, tmp_path):
    target = tmp_path / "report.html"
    result = invoke("report", "costs", "--format", "html", "--output", str(target))
    assert result.exit_code == 0 and str(target) in result.stdout
    page = target.read_text()
    assert "<svg" in page and "<polyline" in page and "Top projects" in page
    assert "By tool" in page and "claude_code" in page and "codex" in page
    assert "Unpriced usage" in page and "claude-mystery-1" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_output_goes_to_a_file_or_into_a_directory_in_every_format(costed, tmp_path):
    html = invoke("report", "costs", "--format", "html", "--output", str(tmp_path))
    assert html.exit_code == 0, html.output
    assert html.stdout.strip() == str(tmp_path / "costs.html")
    assert "<html" in (tmp_path / "costs.html").read_text()
    target = tmp_path / "new" / "by-model.csv"
    assert invoke("report", "costs", "--by", "model", "--format", "csv", "--output",
                  str(target)).stdout == ""  # fmt: skip
    assert target.read_text().startswith("model,requests,")
    shown = invoke("report", "costs", "--by", "day", "--format", "json", "--output", str(tmp_path))
    assert shown.exit_code == 0 and shown.stdout == ""
    assert orjson.loads((tmp_path / "costs.json").read_text())[0]["day"]
    assert invoke("report", "costs", "--output", str(tmp_path)).stdout == ""
    assert "cost by day (auto)" in (tmp_path / "costs.txt").read_text()
    missing_directory = f"{tmp_path / 'reports' / 'weekly'}/"  # a trailing slash: a directory
    assert invoke("report", "costs", "--format", "csv", "--output", missing_directory).stdout == ""
    assert (tmp_path / "reports" / "weekly" / "costs.csv").read_text().startswith("day,")
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    for fmt in ("html", "csv"):
        refused = invoke("report", "costs", "--format", fmt, "--output", str(blocked / "x"))
        assert refused.exit_code == 2
        assert f"cannot write {blocked / 'x'}: " in " ".join(refused.output.split())


def test_price_overrides_set_list_delete_with_an_audit_trail(tally_env, conninfo):
    result = invoke(
        "prices",
        "set",
        "--provider",
        "anthropic",
        "--model",
        "claude-mystery-.*",
        "--from",
        "2026-10-01",
        "--input",
        "2",
        "--output",
        "8",
        "--note",
        "ours",
    )
    assert result.exit_code == 0, result.output
    (listed,) = orjson.loads(invoke("prices", "list", "--format", "json").stdout)
    assert listed["model_pattern"] == "claude-mystery-.*"
    assert Decimal(listed["input_per_mtok"]) == 2 and listed["output_per_mtok"] is not None
    assert listed["company"] is None  # for every company
    with psycopg.connect(conninfo) as conn:  # one a company made through the API
        conn.execute(
            """INSERT INTO price_overrides (company_id, provider, model_pattern, effective_from,
                   input_per_mtok) SELECT id, 'anthropic', 'claude-mystery-.*', '2026-10-01', 1
               FROM companies WHERE slug = 'local'"""
        )
    scoped = orjson.loads(invoke("prices", "list", "--format", "json").stdout)
    assert [row["company"] for row in scoped] == [None, "local"]
    with psycopg.connect(conninfo) as conn:
        conn.execute("DELETE FROM price_overrides WHERE company_id IS NOT NULL")
    assert invoke("prices", "delete", str(listed["id"])).exit_code == 0
    assert orjson.loads(invoke("prices", "list", "--format", "json").stdout) == []
    assert invoke("prices", "delete", str(listed["id"])).exit_code == 2
    bad = invoke(
        "prices", "set", "--provider", "x", "--model", "([", "--from", "2026-10-01", "--input", "1"
    )
    assert bad.exit_code == 2
    lookahead = invoke("prices", "set", "--provider", "x", "--model", "claude(?!-haiku).*",
                       "--from", "2026-10-01", "--input", "1")  # fmt: skip
    assert lookahead.exit_code == 2
    said = " ".join(lookahead.output.replace("│", " ").split())
    assert "(RE2 syntax: no lookarounds or backreferences): invalid perl operator" in said
    for price, said in (
        ("NaN", "must be a number"),
        ("Infinity", "must be a number"),
        ("1e400", "must be below"),
        ("1000000000000", "must be below"),
    ):
        refused = invoke(
            "prices", "set", "--provider", "x", "--model", "y", "--from", "2026-10-01",
            "--input", price,
        )  # fmt: skip
        assert refused.exit_code == 2 and said in refused.output, (price, refused.output)
    with psycopg.connect(conninfo) as conn:
        actions = [row[0] for row in conn.execute("SELECT action FROM activity_log ORDER BY id")]
    assert actions == ["price_override.created", "price_override.deleted"]


def test_an_override_that_would_apply_to_no_usage_is_kept_with_a_warning(costed):
    def warning(provider: str, model: str) -> str:
        result = invoke("prices", "set", "--provider", provider, "--model", model,
                        "--from", "2026-10-01", "--input", "1")  # fmt: skip
        assert result.exit_code == 0 and "added" in result.stdout, result.output
        return " ".join(result.stderr.split())

    said = warning("antropic", "claude-mystery-1")
    assert "no usage is from provider 'antropic' and the pricing library does not know it" in said
    assert "(providers with usage: anthropic, openai)" in said
    said = warning("anthropic", "claude-mystery")  # the whole name must match
    assert "'claude-mystery' matches none of the" in said and "anthropic models" in said
    applies = warning("anthropic", "claude-mystery-1")
    assert "warning" not in applies and applies.startswith("note: usage it covers is stored")
    assert warning("google", "gemini-.*") == ""  # no usage yet, but a provider prices know
    listed = orjson.loads(invoke("prices", "list", "--format", "json").stdout)
    assert len(listed) == 4


def test_an_override_prices_the_unknown_model_once_rematerialised(costed):
    """Setting it names the materialised days whose stored costs it leaves as they are, and
    the command that re-prices them: a report of those days shows the old costs until then."""
    later = invoke("prices", "set", "--provider", "anthropic", "--model", "claude-mystery-1",
                   "--from", "2026-10-04", "--input", "1")  # fmt: skip
    assert later.exit_code == 0 and later.stderr == ""  # its usage is on the 3rd
    added = invoke("prices", "set", "--provider", "anthropic", "--model", "claude-mystery-1",
                   "--from", "2026-10-01", "--input", "1000000", "--output", "1000000")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert " ".join(added.stderr.split()) == (
        "note: usage it covers is stored priced without it on 1 materialised day (2026-10-03); "
        "their costs change once re-materialised: tally materialize --from 2026-10-03 --to "
        "2026-10-03"
    )
    assert invoke("materialize", "--partition", "2026-10-03").exit_code == 0
    models = {
        r["model"]: r
        for r in orjson.loads(invoke("report", "costs", "--by", "model", "--format", "json").stdout)
    }
    mystery = models["claude-mystery-1"]
    assert mystery["pricing_status"] == "priced" and Decimal(mystery["cost_usd"]) == 12
    listed = orjson.loads(invoke("prices", "list", "--format", "json").stdout)
    deleted = invoke("prices", "delete", str(listed[-1]["id"]))
    assert "may be stored priced with it on 1 materialised day (2026-10-03)" in " ".join(
        deleted.stderr.split()
    )


def report_costs(*args: str) -> tuple[list[dict], str]:
    result = invoke("report", "costs", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout), " ".join(result.stderr.split())


LIVE_GROUPINGS = ("day", "week", "month", "source", "project", "agent", "session", "model",
                  "block")  # fmt: skip


def every_grouping() -> dict[str, list[dict]]:
    """Each grouping's rows, without the attributed share (attribution is not priced live)."""
    rows = {by: report_costs("--by", by)[0] for by in LIVE_GROUPINGS}
    return {by: [{k: v for k, v in r.items() if k != "attributed_share"} for r in rows[by]]
            for by in rows}  # fmt: skip


def test_days_the_warehouse_is_behind_on_are_priced_live(tally_env, costed):
    before = every_grouping()
    assert "behind" not in report_costs("--by", "day")[1]
    # a request that grows on the next ingest (its final line), and one on a new day
    write_jsonl(
        tally_env / "claude" / "projects" / "p" / "mystery.jsonl",
        [
            assistant("m_x", "r_x", "2026-10-03T12:00:01Z",
                      usage(input_tokens=5, output=70, cache_read=0), model="claude-mystery-1"),
            assistant("m_y", "r_y", "2026-10-12T08:00:00Z", usage(),
                      model="claude-sonnet-4-5-20250929"),
        ],
        mode="ab",
    )  # fmt: skip
    assert invoke("ingest", "all").exit_code == 0
    # --warehouse-only: the warehouse as it is, and a warning naming the days and the fix
    old, warned = report_costs("--by", "day", "--warehouse-only")
    assert old == before["day"]
    assert (
        "the warehouse is behind the canonical store on 2 days between 2026-10-03 and 2026-10-12"
        in warned
        and "`tally materialize --from 2026-10-03 --to 2026-10-12`" in warned
    )
    assert "2026-10-03" in report_costs("--since", "2026-10-03", "--until", "2026-10-03",
                                        "--warehouse-only")[1]  # fmt: skip
    assert "behind" not in report_costs("--since", "2026-10-04", "--until", "2026-10-11")[1]
    # by default those two days are priced from the canonical store: the rows are what
    # materialising them gives, in every grouping, and the warehouse is left as it was
    live = every_grouping()
    noted = report_costs("--by", "day")[1]
    assert "this report priced them from the canonical store" in noted
    assert "`tally materialize --from 2026-10-03 --to 2026-10-12`" in noted
    assert live["day"] != before["day"]
    assert [r["day"] for r in live["day"]][-1] == "2026-10-12"
    assert report_costs("--by", "day", "--warehouse-only")[0] == before["day"]
    assert invoke("materialize", "--from", "2026-10-03", "--to", "2026-10-12").exit_code == 0
    assert "behind" not in report_costs("--by", "day")[1]
    assert every_grouping() == live


def test_days_the_daily_rollup_is_behind_on_are_priced_live(tally_env, costed):
    """`cost_daily` emptied (a new revision of its definition) or left behind its priced
    usage (its run failed) while `usage_priced` matched the store: the report read the
    rollup alone and showed those days missing, without a word."""
    from datetime import date, timedelta

    from ingestion.settings import get_settings
    from ingestion.warehouse.base import open_warehouse
    from schemas.warehouse import COST_DAILY

    before = every_grouping()
    first, last = (date.fromisoformat(row["day"]) for row in before["day"][1:3])
    warehouse = open_warehouse(get_settings().resolved_warehouse_url)
    end = last + timedelta(days=1)
    emptied = warehouse.read_window(COST_DAILY, first, end).clear()
    assert warehouse.replace_window(COST_DAILY, first, end, emptied) == 0
    warned = report_costs("--by", "day", "--warehouse-only")[1]
    assert f"daily rollup (cost_daily) is behind its priced usage on 2 days between {first} " \
        f"and {last}" in warned  # fmt: skip
    assert f"`tally materialize --from {first} --to {last}`" in warned
    assert every_grouping() == before  # priced live, as materialising them gives
    assert "this report priced them" in report_costs("--by", "day")[1]
    assert invoke("materialize", "--from", str(first), "--to", str(last)).exit_code == 0
    assert "behind" not in report_costs("--by", "day")[1]


def test_refresh_reads_new_lines_before_reporting(tally_env, costed, tmp_path):
    write_jsonl(
        tally_env / "claude" / "projects" / "p" / "mystery.jsonl",
        [assistant("m_z", "r_z", "2026-10-13T09:30:00Z", usage(input_tokens=11, output=13),
                   model="claude-mystery-2")],
        mode="ab",
    )  # fmt: skip
    assert "2026-10-13" not in {r["day"] for r in report_costs("--by", "day")[0]}
    rows, said = report_costs("--by", "day", "--refresh")
    day = {r["day"]: r for r in rows}["2026-10-13"]
    assert day["requests"] == 1 and day["input_tokens"] == 11 and day["output_tokens"] == 13
    assert day["pricing_status"] == "unpriced"
    assert "1 new events" in said and "2026-10-13" in said
    assert "1 new events" not in report_costs("--by", "day", "--refresh")[1]  # read once
    page = tmp_path / "costs.html"
    assert invoke("report", "costs", "--format", "html", "--output", str(page)).exit_code == 0
    assert "claude-mystery-2" in page.read_text()  # unpriced, called out from the live day


def test_a_refresh_prices_the_new_lines_with_the_price_overrides(tally_env, costed):
    """The refreshing report reads the overrides while the new lines load: a model only an
    override prices, first seen in those lines, comes out priced by it."""
    assert invoke("prices", "set", "--provider", "anthropic", "--model", "claude-mystery-3",
                  "--from", "2026-10-01", "--input", "1000000", "--output", "2000000",
                  ).exit_code == 0  # fmt: skip
    write_jsonl(
        tally_env / "claude" / "projects" / "p" / "mystery.jsonl",
        [assistant("m_w", "r_w", "2026-10-14T10:00:00Z", usage(input_tokens=3, output=4,
                   cache_read=0), model="claude-mystery-3")],
        mode="ab",
    )  # fmt: skip
    rows, said = report_costs("--by", "model", "--refresh")
    mystery = {r["model"]: r for r in rows}["claude-mystery-3"]
    assert "1 new events" in said
    assert mystery["pricing_status"] == "priced"
    assert Decimal(mystery["cost_usd"]) == 3 * 1 + 4 * 2  # $1 and $2 a token


def test_a_report_priced_live_imports_neither_pyarrow_nor_numpy(tally_env, costed):
    """A short report pays for every library it imports (pyarrow with numpy: 0.2 s of about
    one second); reading Postgres, pricing and DuckDB all go through Arrow's C stream
    interface instead."""
    import subprocess
    import sys

    write_jsonl(
        tally_env / "claude" / "projects" / "p" / "mystery.jsonl",
        [assistant("m_n", "r_n", "2026-10-14T09:30:00Z", usage(input_tokens=7, output=3))],
        mode="ab",
    )
    probe = "\n".join([
        "import runpy, sys",
        "sys.argv = ['tally', 'report', 'costs', '--by', 'day', '--format', 'json', '--refresh']",
        "try:",
        "    runpy.run_module('pipelines.cli.main', run_name='__main__')",
        "except SystemExit as exit:",
        "    assert not exit.code, exit.code",
        "heavy = [m for m in ('pyarrow', 'numpy', 'pandas') if m in sys.modules]",
        "print('heavy:', *heavy, file=sys.stderr)",
    ])  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=Path(__file__).parents[1]
    )
    assert result.returncode == 0, result.stderr
    assert "2026-10-14" in {row["day"] for row in orjson.loads(result.stdout)}
    said = " ".join(result.stderr.split())
    assert "this report priced it from the canonical store" in said
    assert result.stderr.splitlines()[-1] == "heavy:"
    # the refresh, run in a child writing to the same stderr, said its piece first
    assert said.index("ingest: 1 files read") < said.index("this report priced it")


def test_the_attribution_reports_say_when_their_days_are_behind(tally_env, costed):
    def warnings(*report: str) -> str:
        result = invoke("report", *report, "--format", "json")
        assert result.exit_code == 0, result.output
        return " ".join(result.stderr.split())

    reports = [("attribution",), ("attribution", "--by", "event"), ("costs", "--by", "issue")]
    assert all("out of date" not in warnings(*report) for report in reports)
    write_jsonl(
        tally_env / "claude" / "projects" / "p" / "mystery.jsonl",
        [assistant("m_y", "r_y", "2026-10-05T08:00:00Z", usage(), model="claude-mystery-1")],
        mode="ab",
    )
    assert invoke("ingest", "all").exit_code == 0
    behind = (
        "the attributions in the warehouse on 2026-10-05 are out of date until you run "
        "`tally materialize --partition 2026-10-05`"
    )
    assert all(behind in warnings(*report) for report in reports)
    # pricing alone catches up neither the daily rollup nor the attribution derived from it
    assert invoke("materialize", "--select", "group:pricing", "--partition",
                  "2026-10-05").exit_code == 0  # fmt: skip
    assert "daily rollup (cost_daily) is behind its priced usage on 2026-10-05" in warnings(
        "costs", "--by", "day", "--warehouse-only"
    )
    assert all(behind in warnings(*report) for report in reports)
    assert invoke("materialize", "--partition", "2026-10-05").exit_code == 0
    assert all("out of date" not in warnings(*report) for report in reports)
    # a day attributed by another version of the engine (tally was upgraded since)
    import duckdb

    from ingestion.settings import get_settings

    path = get_settings().resolved_warehouse_url.removeprefix("duckdb:///")
    with duckdb.connect(path) as warehouse:
        (updated,) = warehouse.execute(
            "UPDATE usage_attributed SET engine_version = 'tally-attribution-0' "
            "WHERE day = DATE '2026-10-05'"
        ).fetchone()
    assert updated > 0
    older = "the attributions in the warehouse on 2026-10-05 are out of date"
    assert all(older in warnings(*report) for report in reports)
    assert "out of date" not in warnings("costs", "--by", "day")
    # the rollup by work item behind the attributed requests (its run failed, or it was
    # emptied for a new revision of its definition): the reports by issue showed less
    assert invoke("materialize", "--partition", "2026-10-05").exit_code == 0
    assert all("out of date" not in warnings(*report) for report in reports)
    from datetime import date

    from ingestion.warehouse.base import open_warehouse
    from schemas.warehouse import ATTRIBUTION_DAILY

    store = open_warehouse(get_settings().resolved_warehouse_url)
    day, end = date(2026, 10, 5), date(2026, 10, 6)
    assert (
        store.replace_window(
            ATTRIBUTION_DAILY, day, end, store.read_window(ATTRIBUTION_DAILY, day, end).clear()
        )
        == 0
    )
    assert all(behind in warnings(*report) for report in reports)


def test_the_attribution_summary_says_when_nothing_was_attributed(tally_env):
    result = invoke("report", "attribution")
    assert result.exit_code == 0, result.output
    assert "no attributed usage in the window (`tally materialize` attributes it)" in " ".join(
        result.output.split()
    )


def test_materialize_rejects_a_bad_selection(costed):
    result = invoke("materialize", "--select", "nonsense((", "--partition", "2026-10-03")
    assert result.exit_code == 2


def test_materialize_prints_no_beta_notices(costed):
    """Dagster's notices about beta parameters the definitions use are for their authors;
    a user running the command sees only the result."""
    import warnings

    from dagster import BetaWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert invoke("materialize", "--partition", "2026-10-03").exit_code == 0
    assert [str(w.message) for w in caught if issubclass(w.category, BetaWarning)] == []


def test_materialisations_are_recorded_where_the_ui_reads_them(costed, db_url):
    """The run `tally materialize` made is in the instance `tally ui` serves (its own
    PostgreSQL database), with each asset's materialisations and check results."""
    from dagster import AssetCheckKey, AssetKey, DagsterRunStatus, RunsFilter

    from ingestion.settings import get_settings
    from pipelines.instance import shared_instance

    assert invoke("materialize", "--partition", "2026-10-03").exit_code == 0
    settings = get_settings()
    with shared_instance(db_url, settings.resolved_data_dir, settings.dagster_database) as dg:
        runs = dg.get_runs(RunsFilter(statuses=[DagsterRunStatus.SUCCESS]))
        assert len(runs) == 2  # the fixture's run over every day, then this one
        assert runs[0].tags["dagster/partition"] == "2026-10-03"
        latest = dg.get_latest_materialization_event(AssetKey("cost_daily"))
        assert latest is not None and latest.run_id == runs[0].run_id
        assert latest.asset_materialization.partition == "2026-10-03"
        for name in ("schema", "totals_match_usage_priced"):
            history = dg.event_log_storage.get_asset_check_execution_history(
                AssetCheckKey(AssetKey("cost_daily"), name), limit=1
            )
            assert [record.run_id for record in history] == [runs[0].run_id]
            assert history[0].status.value == "SUCCEEDED", (name, history[0].status)


def test_a_warehouse_that_was_never_built_is_priced_whole(costed, monkeypatch):
    import assets.costs.live as live
    from ingestion.settings import get_settings

    materialised = every_grouping()
    monkeypatch.setattr(live, "LIVE_RANGE_EVENTS", 1)  # a range a day: the same rows
    path = get_settings().resolved_warehouse_url.removeprefix("duckdb://")
    Path(path).unlink()  # derived: the report prices every day from the canonical store
    result = invoke("report", "costs", "--by", "day", "--format", "json")
    said = " ".join(result.stderr.split())
    # the corpus has usage on 8 of its 10 days; the notice comes before the wait, not after
    assert said.startswith("pricing 8 days between 2026-10-01 and 2026-10-10 from the canonical")
    assert "this report priced them from the canonical store" in said
    assert every_grouping() == materialised


def test_a_cost_report_names_usage_no_partition_holds(tally_env, costed):
    """A request dated after today (a clock set ahead) is stored, but no daily partition
    holds its day, so no cost report from the warehouse can: the report says so."""
    from datetime import UTC, datetime, timedelta

    ahead = datetime.now(UTC).date() + timedelta(days=40)
    write_jsonl(
        tally_env / "claude" / "projects" / "p" / "clock-ahead.jsonl",
        [assistant("m_ahead", "r_ahead", f"{ahead.isoformat()}T12:00:00Z", usage())],
    )
    assert invoke("ingest", "all").exit_code == 0
    result = invoke("report", "costs", "--by", "day", "--format", "json")
    assert result.exit_code == 0, result.output
    said = " ".join(result.stderr.split())
    assert (
        f"this report leaves out 1 request on {ahead}, outside the daily partitions "
        "(2024-01-01 to" in said
    )
    assert "a clock set ahead" in said
    assert ahead.isoformat() not in {row["day"] for row in orjson.loads(result.stdout)}
    for command in (("costs", "--until", str(ahead - timedelta(days=1))), ("attribution",)):
        result = invoke("report", *command)
        assert ("leaves out 1 request" in result.stderr) is (command == ("attribution",))


def test_a_window_without_usage_says_so_under_its_empty_table(costed):
    result = invoke("report", "costs", "--by", "day", "--since", "2030-01-01")
    assert result.exit_code == 0
    assert "no usage from 2030-01-01 in the warehouse or the canonical store" in result.stdout
    usage = invoke("report", "usage", "--since", "2030-01-02", "--until", "2030-01-03")
    assert "no usage from 2030-01-02 to 2030-01-03 in the canonical store" in usage.stdout
    csv = invoke("report", "costs", "--by", "day", "--since", "2030-01-01", "--format", "csv")
    assert csv.stdout.count("\n") == 1  # the header alone: machine formats stay data


def test_a_report_of_several_companies_says_so_and_reports_one_on_request(
    costed, tally_env, conninfo
):
    """A store shared by companies (API keys of several) once added them up in every row
    without a word: `--by project` merged two companies' projects of one name."""
    from ingestion.runner import IngestRun
    from ingestion.sources import CLAUDE_CODE

    other = tally_env / "other" / "projects"
    write_jsonl(other / "p" / "acme.jsonl", [
        assistant("m_acme", "r_acme", "2026-10-03T12:00:00Z", usage(), model="claude-opus-4-6"),
    ])  # fmt: skip
    IngestRun(conninfo, CLAUDE_CODE, other, company="acme", batch_rows=1000,
              max_line_bytes=1 << 20, workers=0).run()  # fmt: skip
    assert invoke("materialize", "--partition", "2026-10-03").exit_code == 0

    def report(*extra: str) -> tuple[list[dict], str]:
        result = runner.invoke(app, ["report", "costs", "--format", "json", *extra])
        assert result.exit_code == 0, result.output
        return orjson.loads(result.stdout), result.stderr

    def requests(rows: list[dict]) -> int:
        return sum(row["requests"] for row in rows)

    every, said = report("--by", "day")
    assert "note: these rows add up 2 companies (acme, local); --company COMPANY" in said
    local, said_local = report("--by", "day", "--company", "local")
    acme, _ = report("--by", "model", "--company", "acme")
    assert "companies" not in said_local
    assert requests(acme) == 1 and requests(local) == requests(every) - 1
    for by in ("block", "issue", "project"):
        rows, _ = report("--by", by, "--company", "acme")
        assert requests(rows) == 1, by
    unknown = runner.invoke(app, ["report", "costs", "--company", "nope"])
    assert unknown.exit_code == 2 and "no company 'nope' (the store holds: acme, local)" in (
        unknown.output
    )
    # the usage and attribution reports take --company too
    usage_rows = orjson.loads(invoke("report", "usage", "--by", "model", "--company", "acme",
                                     "--format", "json").stdout)  # fmt: skip
    assert [(row["model"], row["requests"]) for row in usage_rows] == [("claude-opus-4-6", 1)]
    events = orjson.loads(invoke("report", "attribution", "--by", "event", "--company", "acme",
                                 "--format", "json").stdout)  # fmt: skip
    assert [event["message_id"] for event in events] == ["m_acme"]
    summary = orjson.loads(invoke("report", "attribution", "--company", "acme",
                                  "--format", "json").stdout)  # fmt: skip
    assert sum(row["requests"] for row in summary["rows"]) == 1
    gap = orjson.loads(invoke("report", "attribution", "--by", "session", "--company", "acme",
                              "--format", "json").stdout)  # fmt: skip
    assert [row["requests"] for row in gap] == [1]


def test_reports_narrowed_to_a_project_agent_or_source_add_up_to_the_whole(costed, tmp_path,
                                                                          tally_env):  # fmt: skip
    """Finance asks what one project cost, or what Codex cost: the API could say, the CLI
    could not. --project, --agent and --source keep only those sessions' requests, in every
    grouping, in the days priced live, and on the HTML page."""

    def cost(rows: list[dict]) -> Decimal:
        return sum((Decimal(r["cost_usd"] or 0) for r in rows), Decimal(0))

    def by_source(groupings: tuple[str, ...]) -> None:
        total = cost(report_costs("--by", "model")[0])
        sessions = report_costs("--by", "session")[0]
        tools = {r["source"]: r for r in report_costs("--by", "source")[0]}
        assert set(tools) == {"claude_code", "codex"} and cost(list(tools.values())) == total
        for source in ("claude_code", "codex"):
            mine = [r for r in sessions if r["source"] == source]
            assert Decimal(tools[source]["cost_usd"]) == cost(mine)
            assert tools[source]["requests"] == sum(r["requests"] for r in mine)
            for by in groupings:
                assert cost(report_costs("--by", by, "--source", source)[0]) == cost(mine) > 0
            blocks = report_costs("--by", "block", "--source", source)[0]
            assert {b["source"] for b in blocks} == {source}
            assert sum(b["requests"] for b in blocks) == sum(r["requests"] for r in mine)
        assert sum(cost(report_costs("--by", "day", "--source", s)[0])
                   for s in ("claude_code", "codex")) == total  # fmt: skip

    by_source(("day", "month", "model", "session", "project", "agent", "issue", "goal"))
    # a request on a day the warehouse has not caught up with: priced live (issues and goals
    # are read from the warehouse alone)
    write_jsonl(tally_env / "claude" / "projects" / "p" / "late.jsonl",
                [assistant("m_l", "r_l", "2026-10-12T08:00:00Z", usage(), session="late")],
                )  # fmt: skip
    assert invoke("ingest", "all").exit_code == 0
    by_source(("day", "month", "model", "session", "project", "agent"))
    projects = report_costs("--by", "project")[0]
    assert len(projects) > 1
    # a session's row names its project: the sessions of a project add up to it
    for project in projects:
        mine = [r for r in report_costs("--by", "session")[0] if r["project"] == project["project"]]
        assert cost(mine) == Decimal(project["cost_usd"])
    for project in projects:
        days, _ = report_costs("--by", "day", "--project", project["project"])
        assert cost(days) == Decimal(project["cost_usd"])
        assert sum(d["requests"] for d in days) == project["requests"]
        (only,) = report_costs("--by", "project", "--project", project["project"])[0]
        assert only == project  # the attributed share of that project's requests too
    late = report_costs("--by", "day", "--project", "/home/dev/src/app")[0]
    assert "2026-10-12" in {d["day"] for d in late}
    # the HTML page of one project names it and lists no other
    target = tmp_path / "one.html"
    name = projects[0]["project"]
    page = invoke("report", "costs", "--format", "html", "--project", name, "--output",
                  str(target))  # fmt: skip
    assert page.exit_code == 0, page.output
    text = target.read_text()
    assert f"tally cost report: project {name}" in text
    assert not any(p["project"] in text for p in projects[1:] if p["project"] not in name)
    # a name that matches nothing says so and where the names are; blocks refuse a project
    rows, said = report_costs("--by", "day", "--agent", "nobody")
    assert rows == [] and "no usage of agent nobody" in said and "--by agent" in said
    refused = invoke("report", "costs", "--by", "block", "--project", name)
    assert refused.exit_code == 2 and "narrow them by --source" in " ".join(refused.output.split())


def test_the_usage_report_narrowed_keeps_the_requests_the_cost_report_keeps(costed, conninfo):
    """`tally report usage` takes --project, --agent and --source too, read from the canonical
    store under the names the cost reports show (a subagent's session under its root's)."""
    with psycopg.connect(conninfo) as conn:
        # the agent of one root session, whose subagents name none of their own
        root = conn.execute("""
            SELECT r.id FROM agent_sessions r
            WHERE r.parent_session_id IS NULL AND r.source = 'claude_code'
              AND EXISTS (SELECT 1 FROM agent_sessions c WHERE c.root_session_id = r.id
                          AND c.id <> r.id AND c.agent_id IS NULL)
            ORDER BY r.session_key LIMIT 1""").fetchone()
        assert root is not None
        agent = conn.execute(
            """
            INSERT INTO agents (company_id, source, external_id, name)
            SELECT company_id, 'paperclip', 'a-1', 'eng' FROM agent_sessions WHERE id = %s
            RETURNING id""",
            root,
        ).fetchone()
        assert agent is not None
        conn.execute("UPDATE agent_sessions SET agent_id = %s WHERE id = %s", (agent[0], root[0]))
        counted = conn.execute(
            """
            SELECT count(*), count(*) FILTER (WHERE s.id = %(root)s)
            FROM token_usage_events e JOIN agent_sessions s ON s.id = e.session_id
            WHERE COALESCE(s.root_session_id, s.id) = %(root)s""",
            {"root": root[0]},
        ).fetchone()
        assert counted is not None and counted[0] > counted[1]
    assert invoke("materialize").exit_code == 0

    def usage_rows(*args: str) -> tuple[list[dict], str]:
        result = invoke("report", "usage", "--by", "day", *args, "--format", "json")
        assert result.exit_code == 0, result.output
        return orjson.loads(result.stdout), " ".join(result.stderr.split())

    def totals(rows: list[dict]) -> tuple[int, int, int]:
        return (sum(r["requests"] for r in rows), sum(r["input_tokens"] for r in rows),
                sum(r["cache_read_tokens"] for r in rows))  # fmt: skip

    names = [("--project", r["project"]) for r in report_costs("--by", "project")[0]]
    names += [("--agent", r["agent"]) for r in report_costs("--by", "agent")[0] if r["agent"]]
    names += [("--source", r["source"]) for r in report_costs("--by", "source")[0]]
    assert ("--agent", "eng") in names and len(names) > 4
    for option, name in names:
        narrowed, _ = usage_rows(option, name)
        assert totals(narrowed) == totals(report_costs("--by", "day", option, name)[0]), name
        assert 0 < totals(narrowed)[0] < totals(usage_rows()[0])[0], name
    # the agent's requests are its session's and its subagents'
    assert totals(usage_rows("--agent", "eng")[0])[0] == counted[0]
    rows, said = usage_rows("--project", "nowhere")
    assert rows == [] and "no usage of project nowhere" in said and "--by project" in said
