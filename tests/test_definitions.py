"""The code location loads, and its assets, checks, jobs and automation are what we expect."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")


@pytest.fixture(scope="module")
def definitions() -> dg.Definitions:
    from pipelines.definitions import defs

    return defs()


def test_assets_and_their_groups(definitions):
    graph = definitions.resolve_asset_graph()
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups == {
        "token_usage_events": "sources",
        "work_graph": "sources",
        "usage_priced": "pricing",
        "cost_daily": "costs",
        "usage_attributed": "attribution",
        "attribution_daily": "costs",
    }
    for name in ("usage_priced", "cost_daily", "usage_attributed", "attribution_daily"):
        node = graph.get(dg.AssetKey(name))
        assert node.partitions_def is not None
        assert node.partitions_def.timezone == "UTC"
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
        assert node.description


def test_warehouse_assets_show_the_columns_of_their_table(definitions):
    from schemas.warehouse import WAREHOUSE_TABLES

    graph = definitions.resolve_asset_graph()
    for table in WAREHOUSE_TABLES:
        metadata = graph.get(dg.AssetKey(table.name)).metadata
        schema = metadata["dagster/column_schema"]
        assert [(c.name, c.type) for c in schema.columns] == list(table.columns)
        assert metadata["dagster/table_name"] == table.name


def test_checks_sit_next_to_their_assets(definitions):
    checks = {
        (key.asset_key.to_user_string(), key.name)
        for key in definitions.resolve_asset_graph().asset_check_keys
    }
    assert checks == {
        ("usage_priced", "schema"),
        ("usage_priced", "tokens_reconcile"),
        ("usage_priced", "unpriced_models"),
        ("usage_priced", "one_source_per_request"),
        ("cost_daily", "schema"),
        ("cost_daily", "totals_match_usage_priced"),
        ("usage_attributed", "schema"),
        ("usage_attributed", "every_priced_event_attributed"),
        ("attribution_daily", "totals_match_usage_attributed"),
    }


def test_jobs_schedules_and_sensors(definitions):
    assert {job.name for job in definitions.jobs} == {
        "ingest_job", "agent_logs_job", "daily_costs_job", "prune_runs_job"}  # fmt: skip
    schedules = {s.name: s.cron_schedule for s in definitions.schedules}
    assert schedules == {
        "hourly_ingest": "0 * * * *",
        "hourly_costs": "10 * * * *",
        "daily_finalise_yesterday": "30 0 * * *",
        "daily_prune_runs": "45 0 * * *",
    }
    sensors = {s.name: s.default_status for s in definitions.sensors}
    assert sensors == {"agent_logs_sensor": dg.DefaultSensorStatus.STOPPED,
                       "orphaned_runs_sensor": dg.DefaultSensorStatus.RUNNING}  # fmt: skip
    # the hourly ingest also reads the work graph; the sensor, firing as logs grow, does not
    jobs = {s.name: s.job_name for s in [*definitions.schedules, *definitions.sensors]
            if s.name != "orphaned_runs_sensor"}  # it requests no runs  # fmt: skip
    assert jobs["hourly_ingest"] == "ingest_job"
    assert jobs["agent_logs_sensor"] == "agent_logs_job"
    for name, expected in (("ingest_job", {"token_usage_events", "work_graph"}),
                           ("agent_logs_job", {"token_usage_events"})):  # fmt: skip
        job = definitions.resolve_job_def(name)
        assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == expected
    graph = definitions.resolve_asset_graph()
    assert graph.get(dg.AssetKey("usage_attributed")).parent_keys == {
        dg.AssetKey("usage_priced"), dg.AssetKey("work_graph")}  # fmt: skip
    costs = definitions.resolve_job_def("daily_costs_job")
    assert costs.partitions_def is not None
    selected = {key.to_user_string() for key in costs.asset_layer.selected_asset_keys}
    assert selected == {"usage_priced", "cost_daily", "usage_attributed", "attribution_daily"}


def test_tally_ui_names_the_automation_nobody_turned_on(definitions, persistent_instance):
    """Dagster starts schedules and sensors stopped: an operator who started `tally ui`
    expecting the hourly ingest had none, and nothing said so."""
    from dagster._core.remote_origin import (
        InProcessCodeLocationOrigin,
        RemoteInstigatorOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.scheduler.instigation import (
        InstigatorState,
        InstigatorStatus,
        InstigatorType,
        SensorInstigatorData,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    from pipelines.cli.ui import CODE_LOCATION, STOPPED_BY_DEFAULT, stopped_automation

    instigators = [*definitions.schedules, *definitions.sensors]
    stopped = {i.name for i in instigators if i.default_status.value == "STOPPED"}
    assert set(STOPPED_BY_DEFAULT) == stopped
    instance = persistent_instance
    assert stopped_automation(instance) == list(STOPPED_BY_DEFAULT)
    location = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name=CODE_LOCATION), location_name=CODE_LOCATION
    )
    repository = RemoteRepositoryOrigin(location, "__repository__")
    for name, status in (("agent_logs_sensor", InstigatorStatus.RUNNING),
                         ("hourly_costs", InstigatorStatus.STOPPED)):  # fmt: skip
        instance.add_instigator_state(InstigatorState(
            RemoteInstigatorOrigin(repository, name), InstigatorType.SENSOR, status,
            SensorInstigatorData(),
        ))  # fmt: skip
    still = ["hourly_ingest", "hourly_costs", "daily_finalise_yesterday", "daily_prune_runs"]
    assert stopped_automation(instance) == still


def test_tally_ui_refuses_to_start_a_second_daemon_on_an_instance(persistent_instance):
    """Two `tally ui` on one instance ran two daemons, which Dagster does not support. The
    heartbeats of a daemon killed without stopping no longer count after 45 s."""
    import time

    from dagster._daemon.types import DaemonHeartbeat

    from pipelines.cli.context import CommandFailed
    from pipelines.cli.ui import refuse_a_second_daemon

    instance = persistent_instance
    refuse_a_second_daemon(instance, "dagster")  # none yet

    def beat(seconds_ago: float) -> None:
        instance.add_daemon_heartbeat(DaemonHeartbeat(time.time() - seconds_ago, "SENSOR",
                                                      "another-daemon", []))  # fmt: skip

    beat(100)
    refuse_a_second_daemon(instance, "dagster")  # a daemon gone (killed) for a while
    beat(10)
    refused = (r"another `tally ui` is running on this Dagster instance \(database dagster\): "
               r"its daemon's last heartbeat was 10 s ago")  # fmt: skip
    with pytest.raises(CommandFailed, match=refused):
        refuse_a_second_daemon(instance, "dagster")
    instance.wipe_daemon_heartbeats()  # what `tally ui` does once its daemon has stopped
    refuse_a_second_daemon(instance, "dagster")


def test_the_sensor_fires_only_when_logs_change(tmp_path, monkeypatch):
    from ingestion.settings import get_settings
    from pipelines.defs.automation import agent_logs_sensor

    monkeypatch.setenv("TALLY_CLAUDE_DIR", str(tmp_path / "claude"))
    monkeypatch.setenv("TALLY_CODEX_DIR", str(tmp_path / "codex" / "sessions"))
    get_settings.cache_clear()
    (tmp_path / "claude" / "p").mkdir(parents=True)
    log = tmp_path / "claude" / "p" / "s.jsonl"
    log.write_text('{"type":"user"}\n')
    first = agent_logs_sensor(dg.build_sensor_context())
    assert len(first.run_requests) == 1
    unchanged = agent_logs_sensor(dg.build_sensor_context(cursor=first.cursor))
    assert not unchanged.run_requests
    with open(log, "a") as handle:
        handle.write('{"type":"user"}\n')
    grown = agent_logs_sensor(dg.build_sensor_context(cursor=first.cursor))
    assert len(grown.run_requests) == 1
    # a rollout Codex archived lands beside its sessions directory
    (tmp_path / "codex" / "archived_sessions").mkdir(parents=True)
    (tmp_path / "codex" / "archived_sessions" / "rollout.jsonl").write_text('{"type":"x"}\n')
    archived = agent_logs_sensor(dg.build_sensor_context(cursor=grown.cursor))
    assert len(archived.run_requests) == 1
    get_settings.cache_clear()


def test_the_sensor_and_the_hourly_ingest_wait_while_an_ingest_run_is_queued(tmp_path, monkeypatch,
                                                        persistent_instance):  # fmt: skip
    """While a long run held the run slots, the sensor queued an ingest run every minute the
    logs grew (and the schedule one every hour), each to start later, find nothing new and
    end. A run waiting to start reads whatever is appended meanwhile: the sensor asks for no
    other until it has started, and keeps its cursor so that growth after that start is still
    noticed."""
    from ingestion.settings import get_settings
    from pipelines.defs.automation import agent_logs_sensor, hourly_ingest

    monkeypatch.setenv("TALLY_CLAUDE_DIR", str(tmp_path / "claude"))
    monkeypatch.setenv("TALLY_CODEX_DIR", str(tmp_path / "codex" / "sessions"))
    get_settings.cache_clear()
    log = tmp_path / "claude" / "p" / "s.jsonl"
    log.parent.mkdir(parents=True)
    instance = persistent_instance

    def tick(cursor: str | None) -> dg.SensorResult:
        with open(log, "a") as handle:  # an agent at work: the log grows every minute
            handle.write('{"type":"user"}\n')
        return agent_logs_sensor(dg.build_sensor_context(cursor=cursor, instance=instance))

    first = tick(None)
    assert len(first.run_requests) == 1
    waiting_run = instance.add_run(
        dg.DagsterRun(job_name="agent_logs_job", run_id="waiting",
                      status=dg.DagsterRunStatus.NOT_STARTED)
    )  # fmt: skip
    for _ in range(3):
        waiting = tick(first.cursor)
        assert not waiting.run_requests
        assert waiting.cursor is None  # unchanged
        assert "waiting to start" in waiting.skip_reason.skip_message
    instance.handle_run_event(waiting_run.run_id, dg.DagsterEvent(
        event_type_value="PIPELINE_START", job_name="agent_logs_job"))  # fmt: skip
    assert instance.get_run_by_id("waiting").status == dg.DagsterRunStatus.STARTED
    assert len(tick(first.cursor).run_requests) == 1  # lines after it started: a next run
    # the hourly ingest reads the logs too
    with dg.build_schedule_context(instance=instance) as context:
        assert isinstance(hourly_ingest(context), dg.RunRequest)
    instance.add_run(dg.DagsterRun(job_name="ingest_job", run_id="hourly",
                                   status=dg.DagsterRunStatus.STARTING))  # fmt: skip
    assert not tick(first.cursor).run_requests
    # and while it waits, the next hour asks for no other
    with dg.build_schedule_context(instance=instance) as context:
        assert isinstance(hourly_ingest(context), dg.SkipReason)
    get_settings.cache_clear()


def test_schedules_ask_for_the_right_partitions(tally_env):
    from datetime import UTC, datetime

    from assets.resources import CanonicalStoreResource, WarehouseResource
    from pipelines.defs.automation import daily_finalise_yesterday, hourly_costs

    at = datetime(2026, 10, 9, 0, 30, tzinfo=UTC)
    context = dg.build_schedule_context(scheduled_execution_time=at)
    assert daily_finalise_yesterday(context).partition_key == "2026-10-08"
    resources = {"canonical_store": CanonicalStoreResource(), "warehouse": WarehouseResource()}
    with dg.build_schedule_context(scheduled_execution_time=at, resources=resources) as hourly:
        requests = hourly_costs(hourly)
    assert [r.partition_key for r in requests] == ["2026-10-09"]  # nothing ingested yet


def test_the_hourly_schedule_also_asks_for_earlier_days_whose_usage_changed(tally_env):
    """Usage that reaches the store after its day was materialised (a transcript flushed
    after midnight) must not leave that day's costs stale until someone notices."""
    from datetime import UTC, date, datetime

    from typer.testing import CliRunner

    from assets.resources import CanonicalStoreResource, WarehouseResource
    from ingestion.settings import get_settings
    from ingestion.warehouse.base import open_warehouse
    from pipelines.cli.main import app
    from pipelines.defs.automation import hourly_costs
    from schemas.warehouse import COST_DAILY
    from tests.builders import assistant, usage, write_jsonl

    transcript = tally_env / "claude" / "projects" / "p" / "s1.jsonl"
    write_jsonl(transcript, [assistant("m1", "r1", "2026-10-07T23:50:00Z", usage())])
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", "all"]).exit_code == 0
    assert runner.invoke(app, ["materialize", "--partition", "2026-10-07"]).exit_code == 0
    resources = {"canonical_store": CanonicalStoreResource(), "warehouse": WarehouseResource()}

    def requested() -> list[str]:
        at = datetime(2026, 10, 9, 1, 10, tzinfo=UTC)
        with dg.build_schedule_context(scheduled_execution_time=at, resources=resources) as tick:
            return [r.partition_key for r in hourly_costs(tick)]  # type: ignore[misc]

    assert requested() == ["2026-10-09"]
    write_jsonl(transcript, [assistant("m2", "r2", "2026-10-07T23:59:00Z", usage())], mode="ab")
    assert runner.invoke(app, ["ingest", "all"]).exit_code == 0
    assert requested() == ["2026-10-07", "2026-10-09"]
    assert runner.invoke(app, ["materialize", "--partition", "2026-10-07"]).exit_code == 0
    assert requested() == ["2026-10-09"]
    # pricing re-materialised alone leaves the day's attribution behind its costs
    write_jsonl(transcript, [assistant("m3", "r3", "2026-10-07T23:59:30Z", usage())], mode="ab")
    assert runner.invoke(app, ["ingest", "all"]).exit_code == 0
    assert runner.invoke(app, ["materialize", "--select", "group:pricing", "--partition",
                               "2026-10-07"]).exit_code == 0  # fmt: skip
    assert requested() == ["2026-10-07", "2026-10-09"]
    # a daily rollup behind its priced usage (emptied for a new revision of its definition,
    # or its run failed) was never asked for again: reports then showed the day empty
    assert runner.invoke(app, ["materialize", "--partition", "2026-10-07"]).exit_code == 0
    assert requested() == ["2026-10-09"]
    warehouse = open_warehouse(get_settings().resolved_warehouse_url)
    day, next_day = date(2026, 10, 7), date(2026, 10, 8)
    emptied = warehouse.read_window(COST_DAILY, day, next_day).clear()
    assert warehouse.replace_window(COST_DAILY, day, next_day, emptied) == 0
    assert requested() == ["2026-10-07", "2026-10-09"]


@pytest.fixture
def persistent_instance() -> Iterator[dg.DagsterInstance]:
    """A Dagster instance that keeps its runs, as the daemon's does."""
    with dg.instance_for_test() as instance:
        yield instance


def test_the_hourly_schedule_catches_up_consecutive_days_in_one_run_at_a_time(
    tally_env, persistent_instance
):
    """A first tick on a store with weeks of history (the daemon started on an install
    whose logs go back months) asked for a run a day, and the next tick for every day not
    yet done again: the queue grew each hour. Consecutive days are one run over their range,
    and no more catch-up is asked for while one is queued or running."""
    from datetime import UTC, datetime

    from typer.testing import CliRunner

    from assets.resources import CanonicalStoreResource, WarehouseResource
    from pipelines.cli.main import app
    from pipelines.defs.automation import CATCH_UP_TAG, hourly_costs
    from tests.builders import assistant, usage, write_jsonl

    days = ["2026-10-02", "2026-10-03", "2026-10-04", "2026-10-06"]
    write_jsonl(tally_env / "claude" / "projects" / "p" / "s1.jsonl", [
        assistant(f"m{n}", f"r{n}", f"{day}T12:00:00Z", usage()) for n, day in enumerate(days)
    ])  # fmt: skip
    assert CliRunner().invoke(app, ["ingest", "all"]).exit_code == 0
    resources = {"canonical_store": CanonicalStoreResource(), "warehouse": WarehouseResource()}
    at = datetime(2026, 10, 9, 1, 10, tzinfo=UTC)
    instance = persistent_instance

    def tick() -> list[dg.RunRequest]:
        with dg.build_schedule_context(
            scheduled_execution_time=at, resources=resources, instance=instance
        ) as context:
            return hourly_costs(context)  # type: ignore[return-value]

    requests = tick()
    start, end = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
    spans = [r.partition_key or f"{r.tags[start]}..{r.tags[end]}" for r in requests]
    assert spans == ["2026-10-02..2026-10-04", "2026-10-06", "2026-10-09"]
    assert [r.tags.get(CATCH_UP_TAG) for r in requests] == ["true", "true", None]

    # the range run is what `tally materialize --from --to` runs: it materialises those days
    from pipelines.definitions import defs

    job = defs().resolve_job_def("daily_costs_job")
    assert job.execute_in_process(tags=requests[0].tags, instance=instance).success
    assert [r.partition_key for r in tick()[:1]] == ["2026-10-06"]  # the rest is done

    running = dg.DagsterRun(job_name="daily_costs_job", run_id="running-catch-up",
                            status=dg.DagsterRunStatus.STARTED,
                            tags={CATCH_UP_TAG: "true"})  # fmt: skip
    instance.add_run(running)
    assert [r.partition_key for r in tick()] == ["2026-10-09"]  # today alone meanwhile
    # and no second run of today while the last hour's has not started
    waiting = dg.DagsterRun(job_name="daily_costs_job", run_id="waiting-today",
                            status=dg.DagsterRunStatus.NOT_STARTED,
                            tags={"dagster/partition": "2026-10-09"})  # fmt: skip
    instance.add_run(waiting)
    assert tick() == []


def test_old_routine_ingest_runs_are_pruned_and_everything_else_kept(
    persistent_instance, monkeypatch
):
    """The sensor starts an ingest run a minute while agents work: their event logs and
    compute logs would grow by about 13 GB a year. Routine runs that ended are deleted once
    older than the retention; failures, runs still going and materialisations stay."""
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    import pipelines.defs.retention as retention

    monkeypatch.setattr(retention, "PRUNE_BATCH", 2)  # several lookups, as a year of runs takes
    instance = persistent_instance
    status = dg.DagsterRunStatus
    runs = {
        "logs-1": ("agent_logs_job", status.SUCCESS), "logs-2": ("agent_logs_job", status.SUCCESS),
        "logs-3": ("agent_logs_job", status.CANCELED), "hourly": ("ingest_job", status.SUCCESS),
        "failed": ("agent_logs_job", status.FAILURE), "going": ("agent_logs_job", status.STARTED),
        "costs": ("daily_costs_job", status.SUCCESS),
    }  # fmt: skip

    def captured(run_id: str) -> Path:  # where a step's output of the run is kept
        log_key = [run_id, "compute_logs", "step"]
        return Path(instance.compute_log_manager.get_captured_local_path(log_key, "out"))

    for run_id, (job, state) in runs.items():
        run = instance.add_run(dg.DagsterRun(job_name=job, run_id=run_id, status=state))
        instance.report_engine_event("a step started", run)
        captured(run_id).parent.mkdir(parents=True)
        captured(run_id).write_text("output")

    assert retention.prune_runs(instance, datetime.now(UTC) - timedelta(days=1)) == 0
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert retention.prune_runs(instance, later, limit=1) == 1  # a prune's most: the oldest
    assert instance.get_run_by_id("logs-1") is None and instance.get_run_by_id("logs-2")
    assert retention.prune_runs(instance, later) == 3
    kept = {record.dagster_run.run_id for record in instance.get_run_records()}
    assert kept == {"failed", "going", "costs"}
    for run_id in runs:
        assert bool(instance.all_logs(run_id)) == (run_id in kept), run_id
        assert captured(run_id).exists() == (run_id in kept), run_id
    # the daily job itself, with the default retention: nothing left is that old
    assert retention.prune_runs_job.execute_in_process(instance=instance).success
    assert {"failed", "going", "costs"} <= {
        r.dagster_run.run_id for r in instance.get_run_records()
    }


@pytest.mark.slow
def test_dg_check_defs_passes(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    dg_cli = Path(sys.executable).parent / "dg"
    # A DAGSTER_HOME of its own: the root dagster.yaml wants the PG settings `tally ui` sets.
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run([str(dg_cli), "check", "defs"], cwd=root, capture_output=True,
                            text=True, timeout=300, env=env)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully" in result.stdout + result.stderr


def test_the_code_location_loads_without_warnings_under_the_name_tally_ui_gives_it():
    """Every process that loads the location (the UI's code server, each run the daemon
    launches) warned that pyproject's code_location_name was not the name it was registered
    under, and that `backfill_policy` is a beta parameter: a hundred lines of an hour's
    log."""
    import logging
    import subprocess
    import sys
    from pathlib import Path

    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    from pipelines.cli.ui import CODE_LOCATION

    logged: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                logged.append(record.getMessage())

    handler = Collect()
    logging.getLogger("dagster").addHandler(handler)
    root = str(Path(__file__).resolve().parents[1])
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name=CODE_LOCATION, working_directory=root),
        location_name=CODE_LOCATION,
    )
    try:
        with dg.instance_for_test() as instance, origin.create_location(instance) as location:
            assert location.name == CODE_LOCATION
            assert location.get_repositories()
    finally:
        logging.getLogger("dagster").removeHandler(handler)
    assert [m for m in logged if "code location name" in m] == []
    # the asset modules are imported already here: a process of its own loads them as the
    # location does, every warning shown
    load = "import dagster as dg, assets; dg.load_assets_from_package_module(assets)"
    loaded = subprocess.run(
        [sys.executable, "-W", "always", "-c", load],
        cwd=root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    assert "Warning" not in loaded.stderr, loaded.stderr
