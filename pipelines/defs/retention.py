"""Run retention. The agent-log sensor starts an ingest run whenever a transcript grows, up to
one a minute while agents work (525,000 a year), each with its event log in the Dagster
database and its compute logs on disk: 15 KB of events or more a run (13 events in process;
a launched run adds its process events), some 8 GB a year or more. Once a day the
routine ingest runs that ended more than TALLY_RUN_RETENTION_DAYS ago are deleted. Failed
runs, runs still going, and every run of another job (those that materialise the daily
assets, whose history the asset catalogue shows) are kept."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from ingestion.settings import get_settings

ROUTINE_JOBS = ("agent_logs_job", "ingest_job")
ENDED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.CANCELED]
# Runs looked up at a time: the first prune on an instance with a year of runs finds them all.
PRUNE_BATCH = 500
# Runs one prune deletes at most. Dagster deletes a run at a time (8 ms each on SQLite): the
# first prune of an instance holding a year of runs would take one of the two run slots for
# an hour; this way it takes a few minutes a day until it has caught up (1,440 runs a day
# are added at most).
PRUNE_PER_RUN = 20_000


def prune_runs(
    instance: dg.DagsterInstance, ended_before: datetime, limit: int | None = None
) -> int:
    """Delete the routine ingest runs that succeeded or were cancelled before `ended_before`
    (at most `limit` of them, oldest first), with their events and compute logs; the number
    deleted."""
    deleted = 0
    for job in ROUTINE_JOBS:
        old = dg.RunsFilter(job_name=job, statuses=ENDED, updated_before=ended_before)
        while limit is None or deleted < limit:
            batch = PRUNE_BATCH if limit is None else min(PRUNE_BATCH, limit - deleted)
            records = instance.get_run_records(filters=old, limit=batch, ascending=True)
            if not records:
                break
            for record in records:
                run_id = record.dagster_run.run_id
                instance.delete_run(run_id)
                instance.compute_log_manager.delete_logs(prefix=[run_id])
                deleted += 1
    return deleted


@dg.op
def prune_old_runs(context: dg.OpExecutionContext) -> None:
    """Delete the routine ingest runs older than TALLY_RUN_RETENTION_DAYS."""
    days = get_settings().run_retention_days
    ended_before = datetime.now(UTC) - timedelta(days=days)
    deleted = prune_runs(context.instance, ended_before, limit=PRUNE_PER_RUN)
    more = " (the most one prune deletes: the rest go tomorrow)" if deleted == PRUNE_PER_RUN else ""
    context.log.info(f"deleted {deleted:,} ingest runs that ended more than {days} days ago{more}")


@dg.job(description="Delete the routine ingest runs older than TALLY_RUN_RETENTION_DAYS.")
def prune_runs_job() -> None:
    prune_old_runs()


@dg.schedule(job=prune_runs_job, cron_schedule="45 0 * * *", execution_timezone="UTC")
def daily_prune_runs() -> dg.RunRequest:
    """Shortly after midnight UTC, after yesterday's costs are final."""
    return dg.RunRequest()
