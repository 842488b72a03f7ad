"""Runs whose process ended without finishing them (killed, out of memory, a reboot), found
and closed.

Dagster marks a run failed when its process dies only while something watches that process:
the code server does, for the runs the daemon or the UI launched. Nobody watches a `tally
materialize` run (the run is the command's own process), nor a launched run whose code server
went down with it (a restart, `tally ui` killed), and the default run launcher gives Dagster's
run monitoring no way to check. Such a run stays STARTED for ever: it takes one of the two
run slots, and it keeps its claim on the "warehouse" (or "ingestion") pool, so every later run
that needs the pool waits for it for ever, `tally materialize` included, with nothing said.
The sensor then skips as "a run waiting to start will read the new lines" and ingestion
stops.

A run's worker is the process that reported the run's start (every Dagster event records its
process id). A run counts as orphaned when that process no longer exists, or when the process
holding its id began after the run started (the id was reused). The check is made on this
machine: a run that `tally materialize` started elsewhere (`tally/host` tag) is left alone.
Closing one marks it failed (cancelled, if it was being cancelled) with the reason in its
event log, and frees its pool slots, which lets the runs waiting for them go on."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster import DagsterInstance

HOST_TAG = "tally/host"
# A process that began this long after its run's recorded start is another process.
CLOCK_SLACK_SECONDS = 2.0


@dataclass(frozen=True)
class OrphanedRun:
    run_id: str
    job_name: str
    pid: int
    started_at: datetime | None

    def describe(self) -> str:
        since = f", started {self.started_at:%Y-%m-%d %H:%M:%S} UTC" if self.started_at else ""
        return f"run {self.run_id} ({job_label(self.job_name)}{since}, process {self.pid})"


def job_label(job_name: str) -> str:
    """A job's name, or what a run of Dagster's own asset jobs (`tally materialize`, a
    materialisation launched from the UI) is."""
    return "asset materialisation" if job_name.startswith("__") else job_name


def this_host() -> str:
    return socket.gethostname()


def run_tags() -> dict[str, str]:
    """Tags for a run started in this process: where its worker runs."""
    return {HOST_TAG: this_host()}


def worker_pid(instance: DagsterInstance, run_id: str) -> int | None:
    """The process that reported the run's start; None while it has not started."""
    from dagster import DagsterEventType

    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.RUN_START, limit=1
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is not None and event.pid:
            return event.pid
    return None


def worker_gone(pid: int, run_started: float | None) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:  # exited; its parent has not reaped it
            return True
        return run_started is not None and process.create_time() > run_started + CLOCK_SLACK_SECONDS
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:  # another user's live process
        return False


def find_orphaned_runs(instance: DagsterInstance) -> list[OrphanedRun]:
    from dagster import DagsterRunStatus, RunsFilter

    in_progress = [DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
    host = this_host()
    found = []
    for record in instance.get_run_records(filters=RunsFilter(statuses=in_progress)):
        run = record.dagster_run
        if run.tags.get(HOST_TAG, host) != host:
            continue
        pid = worker_pid(instance, run.run_id)
        if pid is None or not worker_gone(pid, record.start_time):
            continue
        started = datetime.fromtimestamp(record.start_time, UTC) if record.start_time else None
        found.append(OrphanedRun(run.run_id, run.job_name, pid, started))
    return found


def close_orphaned_runs(instance: DagsterInstance) -> list[OrphanedRun]:
    """Mark every orphaned run failed (or cancelled) and free its pool slots; the runs
    closed."""
    from dagster import DagsterRunStatus

    closed = []
    for orphan in find_orphaned_runs(instance):
        run = instance.get_run_by_id(orphan.run_id)
        if run is None or run.status not in (DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING):
            continue  # it ended meanwhile
        message = (
            f"The process running this run (pid {orphan.pid}) ended without finishing it: "
            "killed, out of memory, or the machine restarted. Marked ended by tally, and its "
            "pool slots freed."
        )
        if run.status == DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, message=message)
        else:
            instance.report_run_failed(run, message=message)
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        closed.append(orphan)
    return closed
