"""Jobs, schedules and the sensor: ingest as logs grow, keep today's costs (and any earlier
day whose usage changed) fresh every hour, and finalise yesterday once it is over."""

import os
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg

from assets.resources import CanonicalStoreResource, WarehouseResource
from assets.slices import consecutive_days
from ingestion.settings import get_settings

# A schedule tick must finish within Dagster's evaluation timeout: wait this long at most for
# a materialisation holding the warehouse, then ask for today alone.
WAREHOUSE_WAIT_SECONDS = 10.0

ingest_job = dg.define_asset_job(
    "ingest_job", selection=["token_usage_events", "work_graph"],
    description="Read what was appended to the agent logs, and the work graph of the "
    "upstreams configured, into the canonical store.",
)  # fmt: skip
# The sensor fires within a minute of a log growing: the work graph (a whole upstream read
# again, tens of seconds for a large Paperclip) waits for the hourly run.
agent_logs_job = dg.define_asset_job(
    "agent_logs_job", selection=["token_usage_events"],
    description="Read what was appended to the agent logs into the canonical store.",
)  # fmt: skip
daily_costs_job = dg.define_asset_job(
    "daily_costs_job", selection=dg.AssetSelection.groups("pricing", "attribution", "costs"),
    description="Price a day's usage, attribute it to work items and roll up its costs.",
)  # fmt: skip


@dg.schedule(job=ingest_job, cron_schedule="0 * * * *", execution_timezone="UTC")
def hourly_ingest(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Every hour: ingest whatever the sensor may have missed, and the work graph; not while
    the last hour's run is still waiting to start (it reads all of it then)."""
    if waiting_to_start(context, ["ingest_job"]):
        return dg.SkipReason("the last hourly ingest is still waiting to start")
    return dg.RunRequest()


# Runs that bring earlier days up to date carry this tag: while one is queued or running, the
# next tick asks for today alone instead of for the same days again.
CATCH_UP_TAG = "tally/catch-up"
WAITING_RUN_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
]
ACTIVE_RUN_STATUSES = [*WAITING_RUN_STATUSES, dg.DagsterRunStatus.STARTED]


@dg.schedule(job=daily_costs_job, cron_schedule="10 * * * *", execution_timezone="UTC")
def hourly_costs(
    context: dg.ScheduleEvaluationContext,
    canonical_store: CanonicalStoreResource,
    warehouse: WarehouseResource,
) -> list[dg.RunRequest]:
    """Every hour, after the ingest: today's costs so far, and every earlier day whose usage
    changed since it was materialised (a transcript flushed after midnight, logs copied in
    late, an agent that posted its events hours afterwards); without this such a day kept
    its old costs until someone noticed.

    Consecutive earlier days are one run over their range (the assets work through it a
    slice at a time): a run a day made a first tick on a store with a year of history queue
    365 runs, and the next tick queue again every day not yet done."""
    moment = context.scheduled_execution_time or datetime.now(UTC)
    today = moment.date()
    hour = f"{moment:%Y-%m-%dT%H}"
    catch_up: list[dg.RunRequest] = []
    if catching_up(context):
        context.log.info("earlier days: a catch-up run is still queued or running")
    else:
        changed = changed_days(context, canonical_store, warehouse, today)
        for first, end in consecutive_days(changed):
            last = end - timedelta(days=1)
            catch_up.append(range_request(first, last, run_key=f"{first}..{last}@{hour}"))
    if waiting_to_start(context, ["daily_costs_job"], {PARTITION_TAG: today.isoformat()}):
        context.log.info(f"{today}: the last hour's run of it is still waiting to start")
        return catch_up
    today_request = dg.RunRequest(partition_key=today.isoformat(), run_key=f"{today}@{hour}")
    return [*catch_up, today_request]


PARTITION_TAG = "dagster/partition"


def catching_up(context: dg.ScheduleEvaluationContext) -> bool:
    """Whether an earlier catch-up run is still queued or running."""
    try:
        instance = context.instance
    except dg.DagsterInvariantViolationError:  # a context built without an instance (tests)
        return False
    active = dg.RunsFilter(tags={CATCH_UP_TAG: "true"}, statuses=ACTIVE_RUN_STATUSES)
    return bool(instance.get_run_records(filters=active, limit=1))


def range_request(first: date, last: date, run_key: str) -> dg.RunRequest:
    """One run over [first, last]: a partition, or a range as `tally materialize --from --to`
    runs it."""
    tags = {CATCH_UP_TAG: "true"}
    if first == last:
        return dg.RunRequest(partition_key=first.isoformat(), run_key=run_key, tags=tags)
    return dg.RunRequest(
        run_key=run_key,
        tags={
            **tags,
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
    )


def changed_days(
    context: dg.ScheduleEvaluationContext,
    canonical_store: CanonicalStoreResource,
    warehouse: WarehouseResource,
    today: date,
) -> list[date]:
    """Days before today, within the partitions, whose requests or tokens in the warehouse
    differ from the canonical store's, or whose daily rollup or attribution no longer
    matches their priced usage (pricing re-materialised alone, a rollup emptied for a new
    revision of its definition). Days attributed by an older engine are left to
    the operator (the reports name them): after an upgrade they would be every day of the
    history, requested in one tick."""
    import psycopg

    from ingestion.reports.freshness import stale_attribution_days
    from ingestion.warehouse.errors import WarehouseUnavailable

    try:
        staleness = stale_attribution_days(
            get_settings(), canonical_store.store(), warehouse.open(WAREHOUSE_WAIT_SECONDS),
            until=today - timedelta(days=1), rollup=True,
        )  # fmt: skip
    except (WarehouseUnavailable, psycopg.Error) as error:
        context.log.warning(f"earlier days not checked for changed usage: {error}")
        return []
    return staleness.days if staleness else []


@dg.schedule(job=daily_costs_job, cron_schedule="30 0 * * *", execution_timezone="UTC")
def daily_finalise_yesterday(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Shortly after midnight UTC: yesterday's final costs."""
    moment = context.scheduled_execution_time or datetime.now(UTC)
    return dg.RunRequest(partition_key=(moment - timedelta(days=1)).strftime("%Y-%m-%d"))


def logs_fingerprint(directories: list[Path]) -> str:
    """Count, total size and newest change of the log files: cheap, and it moves whenever a
    file is added or grows."""
    count, size, newest = 0, 0, 0
    for directory in directories:
        for root, _, names in os.walk(directory):
            for name in names:
                if name.endswith(".jsonl"):
                    try:
                        stat = os.stat(os.path.join(root, name))
                    except OSError:
                        continue
                    count, size = count + 1, size + stat.st_size
                    newest = max(newest, stat.st_mtime_ns)
    return f"{count}:{size}:{newest}"


@dg.sensor(job=agent_logs_job, minimum_interval_seconds=60)
def agent_logs_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Runs the ingest when transcript files appear or grow."""
    from ingestion.sources import AGENT_LOG_SOURCES, log_directories

    settings = get_settings()
    fingerprint = logs_fingerprint(
        [root for source in AGENT_LOG_SOURCES for root in log_directories(source, settings)]
    )
    if fingerprint == context.cursor:
        return dg.SensorResult(skip_reason="no new or grown log files")
    if waiting_to_start(context, INGEST_JOBS):
        # the cursor stays: once that run has started, growth after it is noticed again
        return dg.SensorResult(skip_reason="an ingest run waiting to start will read the new lines")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=fingerprint)], cursor=fingerprint)


# The jobs that read the agent logs.
INGEST_JOBS = ("agent_logs_job", "ingest_job")


def waiting_to_start(
    context: dg.SensorEvaluationContext | dg.ScheduleEvaluationContext,
    jobs: Sequence[str],
    tags: dict[str, str] | None = None,
) -> bool:
    """Whether a run of one of `jobs` (with `tags`) is queued and has not started: it will
    read whatever has been written by then. While a long run (a backfill, a first ingest)
    held the run slots, the sensor queued an ingest a minute as the logs grew, and the
    schedules a run an hour, each to start later, find nothing new and end."""
    try:
        instance = context.instance
    except dg.DagsterInvariantViolationError:  # a context built without an instance (tests)
        return False
    return any(
        instance.get_run_records(
            filters=dg.RunsFilter(job_name=job, statuses=WAITING_RUN_STATUSES, tags=tags),
            limit=1,
        )
        for job in jobs
    )
