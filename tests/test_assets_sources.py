"""The `work_graph` asset materialised in-process with real resources: the upstreams the
settings name are ingested; one that cannot be read fails the run, naming it, after the
other has loaded."""

from __future__ import annotations

import dagster as dg
import psycopg
import pytest

from assets.sources import work_graph
from ingestion.settings import get_settings
from pipelines.resources import build_resources
from tests.pigeon_fixture import build_pigeon_db

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")


def materialize(db_url: str) -> dg.ExecuteInProcessResult:
    return dg.materialize([work_graph], resources=build_resources(database_url=db_url),
                          raise_on_error=False)  # fmt: skip


def metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    (event,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def issue_numbers(conninfo: str) -> list[int]:
    with psycopg.connect(conninfo) as conn:
        return [n for (n,) in conn.execute("SELECT number FROM issues ORDER BY 1")]


def test_with_no_upstream_configured_there_is_nothing_to_do(tally_env, db_url):
    result = materialize(db_url)
    assert result.success
    assert metadata(result) == {"upstreams": "none"}


def test_the_configured_pigeon_is_ingested_and_a_second_run_changes_nothing(
    tally_env, db_url, conninfo, monkeypatch
):
    monkeypatch.setenv("TALLY_PIGEON_DB", str(build_pigeon_db(tally_env / "pigeon.db")))
    get_settings.cache_clear()
    first = materialize(db_url)
    assert first.success
    assert metadata(first)["upstreams"] == "pigeon"
    assert metadata(first)["pigeon_rows_changed"] > 0
    assert issue_numbers(conninfo) == [1, 2]
    again = materialize(db_url)
    assert metadata(again)["pigeon_rows_changed"] == 0


def test_an_unreadable_upstream_fails_the_run_naming_it_after_the_other_loads(
    tally_env, db_url, conninfo, monkeypatch, pg_server_url
):
    from sqlalchemy.engine import make_url

    missing = make_url(pg_server_url).set(database="no_such_paperclip").render_as_string(False)
    monkeypatch.setenv("TALLY_PAPERCLIP_URL", missing)
    monkeypatch.setenv("TALLY_PIGEON_DB", str(build_pigeon_db(tally_env / "pigeon.db")))
    get_settings.cache_clear()
    result = materialize(db_url)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.user_failure_data.description
    assert message.startswith("paperclip: cannot connect to Paperclip's database")
    assert issue_numbers(conninfo) == [1, 2]  # Pigeon's cards loaded all the same
