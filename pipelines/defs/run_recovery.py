"""Runs left STARTED by a process that died (killed, out of memory, a reboot) are closed
within a minute, so that they stop holding the run slots and the warehouse for ever
(`pipelines/orphaned_runs.py` says how they are found). On by default: without it, one killed
run silently stops every later materialisation, scheduled or not."""

import dagster as dg

from pipelines.orphaned_runs import close_orphaned_runs


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def orphaned_runs_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Marks failed the runs whose process ended without finishing them, and frees the pool
    slots they held. Requests no runs."""
    closed = close_orphaned_runs(context.instance)
    for orphan in closed:
        context.log.warning(f"{orphan.describe()} had ended without finishing: marked failed")
    if not closed:
        return dg.SkipReason("no run left behind by a process that ended")
    return dg.SkipReason(
        "closed " + "; ".join(orphan.describe() for orphan in closed) + " (marked failed)"
    )
