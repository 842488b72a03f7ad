"""Runs left STARTED by a process that died: found, closed, and their pool slots freed, so that
later runs do not wait for them for ever."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import dagster as dg
import psycopg
import pytest
from typer.testing import CliRunner

from ingestion.demo.corpus import generate_corpus
from pipelines.cli.main import app
from pipelines.defs.run_recovery import orphaned_runs_sensor
from pipelines.orphaned_runs import HOST_TAG, close_orphaned_runs, find_orphaned_runs, this_host
from tests.api_helpers import TALLY

POOL = "warehouse"


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        instance.event_log_storage.set_concurrency_slots(POOL, 1)
        yield instance


def ended_process() -> int:
    """The id of a process that has exited and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def started_run(
    instance: dg.DagsterInstance,
    run_id: str,
    pid: int,
    status: dg.DagsterRunStatus = dg.DagsterRunStatus.STARTED,
    tags: dict[str, str] | None = None,
    started_at: float | None = None,
) -> dg.DagsterRun:
    """A run whose worker, process `pid`, reported its start (at `started_at`, else now)."""
    waiting = dg.DagsterRunStatus.NOT_STARTED
    instance.add_run(
        dg.DagsterRun(job_name="daily_costs_job", run_id=run_id, status=waiting, tags=tags or {})
    )
    start = dg.DagsterEvent(event_type_value="PIPELINE_START", job_name="daily_costs_job", pid=pid)
    instance.handle_new_event(dg.EventLogEntry(
        error_info=None, level="DEBUG", user_message="", run_id=run_id,
        timestamp=time.time() if started_at is None else started_at, dagster_event=start,
    ))  # fmt: skip
    if status == dg.DagsterRunStatus.CANCELING:
        instance.report_run_canceling(instance.get_run_by_id(run_id))
    run = instance.get_run_by_id(run_id)
    assert run is not None and run.status == status
    return run


def test_runs_whose_process_ended_are_closed_and_their_slots_freed(instance):
    """A `tally materialize` killed while it held the warehouse left its run STARTED and the
    slot claimed: every later materialisation waited for it for ever, with nothing said."""
    import psutil

    storage = instance.event_log_storage
    killed = started_run(instance, "killed", ended_process())
    assert storage.claim_concurrency_slot(POOL, "killed", "usage_priced").is_claimed
    started_run(instance, "alive", os.getpid())
    started_run(instance, "cancelling", ended_process(), status=dg.DagsterRunStatus.CANCELING)
    started_run(instance, "elsewhere", ended_process(), tags={HOST_TAG: "another-machine"})
    newcomer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        # the run's worker id now names a process that began after the run had started
        began = psutil.Process(newcomer.pid).create_time()
        started_run(instance, "reused", newcomer.pid, started_at=began - 10)
        assert {orphan.run_id for orphan in find_orphaned_runs(instance)} == {
            "killed", "cancelling", "reused"}  # fmt: skip
        # another run may not claim the slot while the killed one holds it
        assert not storage.claim_concurrency_slot(POOL, "next", "usage_priced").is_claimed
        closed = close_orphaned_runs(instance)
    finally:
        newcomer.kill()
        newcomer.wait()
    assert sorted(orphan.run_id for orphan in closed) == ["cancelling", "killed", "reused"]
    status = {run_id: instance.get_run_by_id(run_id).status
              for run_id in ("killed", "alive", "cancelling", "elsewhere", "reused")}  # fmt: skip
    assert status == {
        "killed": dg.DagsterRunStatus.FAILURE, "alive": dg.DagsterRunStatus.STARTED,
        "cancelling": dg.DagsterRunStatus.CANCELED, "elsewhere": dg.DagsterRunStatus.STARTED,
        "reused": dg.DagsterRunStatus.FAILURE,
    }  # fmt: skip
    (failure,) = instance.get_records_for_run(
        killed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
    ).records
    message = failure.event_log_entry.dagster_event.message
    assert re.search(r"The process running this run \(pid \d+\) ended without finishing it",
                     message), message  # fmt: skip
    assert storage.get_concurrency_info(POOL).active_run_ids == set()
    assert storage.claim_concurrency_slot(POOL, "next", "usage_priced").is_claimed
    assert close_orphaned_runs(instance) == []  # closed once


def test_a_holder_on_another_machine_is_named_with_how_to_end_it(instance):
    """A run started in another container (another host name) is never ended here: while a
    `tally materialize` waits for it, it says how to end it should that container be gone."""
    from pipelines.cli.runs import holder_description

    started_run(instance, "here", os.getpid(), tags={HOST_TAG: this_host()})
    started_run(instance, "there", ended_process(), tags={HOST_TAG: "container-7f3a"})
    assert holder_description(instance, "here") == "here (daily_costs_job)"
    assert holder_description(instance, "there") == (
        "there (daily_costs_job, started on container-7f3a: if that machine or container is "
        "gone, end the run in `tally ui`: Terminate, then force termination)"
    )
    assert holder_description(instance, "pruned") == "pruned (deleted)"
    assert find_orphaned_runs(instance) == []  # neither is ended here


def test_the_sensor_closes_them_within_a_minute_and_is_on_by_default(instance):
    started_run(instance, "killed", ended_process())
    assert orphaned_runs_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert orphaned_runs_sensor.minimum_interval_seconds == 60
    first = orphaned_runs_sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(first, dg.SkipReason)
    assert re.search(r"closed run killed \(daily_costs_job, started .* UTC, process \d+\)",
                     first.skip_message)  # fmt: skip
    assert instance.get_run_by_id("killed").status == dg.DagsterRunStatus.FAILURE
    second = orphaned_runs_sensor(dg.build_sensor_context(instance=instance))
    assert second.skip_message == "no run left behind by a process that ended"


def _slots_held(conninfo: str, database: str) -> list[str]:
    dagster = re.sub(r"/[^/?]+(\?|$)", rf"/{database}\1", conninfo, count=1)
    try:
        with psycopg.connect(dagster) as conn:
            rows = conn.execute(
                "SELECT run_id FROM concurrency_slots WHERE run_id IS NOT NULL"
            ).fetchall()
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable):
        return []
    return [row[0] for row in rows]


def materializing(conninfo: str, database: str, output: int) -> tuple[subprocess.Popen, str]:
    """`tally materialize` in a process of its own, once its run holds the warehouse; and the
    run's id."""
    process = subprocess.Popen([str(TALLY), "materialize"], text=True, stdout=output,
                               stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 60
    while not _slots_held(conninfo, database) and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it took the warehouse"
        time.sleep(0.05)
    (run_id,) = _slots_held(conninfo, database)
    return process, run_id


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::dagster.BetaWarning")
def test_materialize_after_one_was_killed_holding_the_warehouse(tally_env, conninfo):
    """The next `tally materialize` says what it closed and runs, instead of waiting for ever;
    and while a live run holds the warehouse it says whom it waits for."""
    from ingestion.settings import get_settings
    from pipelines.instance import shared_instance

    generate_corpus(tally_env, megabytes=0.5, seed=5, days=3)
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", "all"]).exit_code == 0
    settings = get_settings()
    database = settings.dagster_database
    env = {**os.environ}
    killed, holder = materializing(conninfo, database, subprocess.DEVNULL)
    killed.kill()
    killed.wait()

    # in a process of its own: before, it waited for ever, deaf to SIGTERM
    after = subprocess.run([str(TALLY), "materialize"], env=env, text=True, timeout=120,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    said = " ".join(after.stdout.split())
    assert after.returncode == 0, said
    closed = rf"run {holder} \(asset materialisation, started .* UTC, process {killed.pid}\)"
    assert re.search(f"warning: {closed} had ended without finishing", said), said
    assert "materialised" in said
    instance = shared_instance(settings.database_url, settings.resolved_data_dir, database)
    with instance:
        assert instance.get_run_by_id(holder).status == dg.DagsterRunStatus.FAILURE
        # a live run holding the warehouse: the command waits, naming it, until it is freed
        started_run(instance, "hourly-costs", os.getpid())
        storage = instance.event_log_storage
        assert storage.claim_concurrency_slot(POOL, "hourly-costs", "usage_priced").is_claimed
        waiting = subprocess.Popen([str(TALLY), "materialize"], env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        assert waiting.stdout is not None
        first_line = waiting.stdout.readline()
        assert "waiting for run hourly-costs (daily_costs_job) to finish with the warehouse" in (
            first_line
        )
        time.sleep(1.5)
        assert waiting.poll() is None  # still waiting
        storage.free_concurrency_slots_for_run("hourly-costs")
        rest = waiting.communicate(timeout=120)[0]
        assert waiting.returncode == 0, rest
        instance.report_run_failed(instance.get_run_by_id("hourly-costs"))


@pytest.mark.slow
def test_ctrl_c_stops_a_materialisation_and_says_what_it_left(tally_env, conninfo):
    """Ctrl-C printed a failed-materialisation table naming `DagsterExecutionInterruptedError`
    as the error of the step it stopped, and exited 1."""
    import signal

    from ingestion.settings import get_settings

    generate_corpus(tally_env, megabytes=0.5, seed=5, days=3)
    assert CliRunner().invoke(app, ["ingest", "all"]).exit_code == 0
    database = get_settings().dagster_database
    running, run_id = materializing(conninfo, database, subprocess.PIPE)
    running.send_signal(signal.SIGINT)
    said = " ".join(running.communicate(timeout=60)[0].split())
    assert running.returncode == 130, said
    assert said == (
        f"interrupted: run {run_id} stopped and marked failed; each day it had replaced keeps "
        "its new rows, the others their old ones"
    )
    assert _slots_held(conninfo, database) == []


def test_the_instance_gives_back_what_ended_runs_held(tally_env):
    """The instance `tally ui` and `tally materialize` share (dagster.yaml): one writer per
    pool, and Dagster's run monitoring on, every minute, for the runs the orphaned-run check
    does not end: a run stuck starting or cancelling, and the slots of a run ended from the UI
    by force termination (kept for good before)."""
    from ingestion.settings import get_settings
    from pipelines.instance import shared_instance

    settings = get_settings()
    with shared_instance(
        settings.database_url, settings.resolved_data_dir, settings.dagster_database
    ) as instance:
        assert instance.global_op_concurrency_default_limit == 1
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings == {
            "enabled": True, "start_timeout_seconds": 180, "cancel_timeout_seconds": 180,
            "free_slots_after_run_end_seconds": 60, "poll_interval_seconds": 60,
        }  # fmt: skip
