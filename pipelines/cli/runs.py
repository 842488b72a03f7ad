"""What the commands that start Dagster runs (`tally materialize`, `tally run`, `tally ui`)
say and do about other runs: the runs left behind by a process that died, ended with a
warning each, and the runs holding a pool this one needs, waited for by name."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pipelines.cli.context import progress_console

if TYPE_CHECKING:
    from dagster import DagsterInstance

console = progress_console()
# How often a wait for a busy pool looks again.
POOL_POLL_SECONDS = 1.0


def close_and_report(instance: DagsterInstance) -> None:
    """End the runs left behind (`pipelines/orphaned_runs.py`), naming each."""
    from pipelines.orphaned_runs import close_orphaned_runs

    for orphan in close_orphaned_runs(instance):
        console.print(
            f"[yellow]warning:[/] {orphan.describe()} had ended without finishing (killed, out "
            "of memory, or a restart): marked failed, and the pools it held freed"
        )


def wait_for_pools(instance: DagsterInstance, pools: set[str]) -> None:
    """Wait, saying so, while runs hold every slot of a pool the run needs (a scheduled
    materialisation, another `tally materialize`). Waiting inside the run instead is silent
    and does not answer Ctrl-C until the slot is granted. A holder that dies meanwhile is
    ended here."""
    told: set[tuple[str, ...]] = set()
    while True:
        infos = instance.event_log_storage.get_concurrency_infos(sorted(pools))
        busy = {
            pool: sorted(info.active_run_ids)
            for pool, info in infos.items()
            if info.limit is not None and info.active_slot_count >= info.limit
        }
        if not busy:
            return
        for pool, run_ids in busy.items():
            if (pool, *run_ids) not in told:
                told.add((pool, *run_ids))
                holders = ", ".join(holder_description(instance, run_id) for run_id in run_ids)
                console.print(
                    f"waiting for run {holders} to finish with the {pool} (one writer at a "
                    "time; Ctrl-C stops waiting)"
                )
        time.sleep(POOL_POLL_SECONDS)
        close_and_report(instance)


def holder_description(instance: DagsterInstance, run_id: str) -> str:
    """A run holding a pool, for the person waiting: its job, and for a run started on
    another machine (or container), which is never ended here, how to end it if it is gone."""
    from pipelines.orphaned_runs import HOST_TAG, job_label, this_host

    run = instance.get_run_by_id(run_id)
    if run is None:
        return f"{run_id} (deleted)"
    host = run.tags.get(HOST_TAG)
    if host is None or host == this_host():
        return f"{run_id} ({job_label(run.job_name)})"
    return (
        f"{run_id} ({job_label(run.job_name)}, started on {host}: if that machine or container "
        "is gone, end the run in `tally ui`: Terminate, then force termination)"
    )
