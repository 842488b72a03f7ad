"""`tally ui`: the Dagster webserver and daemon on 127.0.0.1, with run, event and schedule
storage in the canonical store's PostgreSQL server (its own `dagster` database)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer

from pipelines.cli.context import (
    CommandFailed,
    StoreContext,
    failures_reported,
    progress_console,
    store,
)
from pipelines.cli.ports import cannot_listen
from pipelines.cli.runs import close_and_report
from pipelines.instance import dagster_home, shared_instance

if TYPE_CHECKING:
    from dagster import DagsterInstance

console = progress_console()
ROOT = Path(__file__).resolve().parents[2]
# Dagster's daemon beats every 30 s: a beat younger than this is from a daemon still running.
LIVE_HEARTBEAT_SECONDS = 45.0
# The module `dagster dev` loads, and so the code location's name in the UI, in runs and in
# schedule and sensor state ([tool.dg.project] code_location_name must match it).
CODE_LOCATION = "pipelines.definitions"
# The schedules and sensors that start stopped, as Dagster's do (tests/test_definitions.py
# keeps this list true): named here so that `tally ui` need not load the definitions.
STOPPED_BY_DEFAULT = (
    "agent_logs_sensor", "hourly_ingest", "hourly_costs", "daily_finalise_yesterday",
    "daily_prune_runs",
)  # fmt: skip


def stopped_automation(instance: DagsterInstance) -> list[str]:
    """The schedules and sensors nobody has turned on in this instance."""
    from dagster._core.scheduler.instigation import InstigatorStatus

    running = {
        state.name
        for state in instance.all_instigator_state()
        if state.status == InstigatorStatus.RUNNING
    }
    return [name for name in STOPPED_BY_DEFAULT if name not in running]


def ui(
    port: int = typer.Option(3000, "--port", min=1, max=65535, help="Port on 127.0.0.1."),
) -> None:
    """Start the Dagster UI and daemon; Ctrl-C stops both."""
    with failures_reported():
        context = store()
        env = {
            **os.environ,
            **dagster_home(
                context.url,
                context.settings.resolved_data_dir,
                context.settings.dagster_database,
            ),
            "TALLY_DATABASE_URL": context.url,
        }
        problem = cannot_listen("127.0.0.1", port)
        if problem:
            raise CommandFailed(problem)
        # runs a restart or a kill left STARTED would hold the run slots and pools for ever
        with shared_instance(
            context.url, context.settings.resolved_data_dir, context.settings.dagster_database
        ) as instance:
            refuse_a_second_daemon(instance, context.settings.dagster_database)
            close_and_report(instance)
            stopped = stopped_automation(instance)
    if stopped:
        console.print(
            f"[yellow]automation stopped:[/] {', '.join(stopped)}; turn them on under "
            "Automation in the UI (once: the instance remembers)"
        )
    command = [
        str(Path(sys.executable).parent / "dagster"), "dev", "-m", CODE_LOCATION,
        "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    console.print(f"Dagster UI on http://127.0.0.1:{port} (Ctrl-C stops it)")
    # Being terminated (a service manager, a closed terminal) stops it as Ctrl-C does: the
    # webserver and daemon run in a session of their own and would otherwise live on. SIGINT
    # too, explicitly: started as a shell's background job it inherits SIGINT ignored, and
    # Python then installs no handler for it.
    for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, _interrupt)
    # Our own process group, with SIGINT restored: dagster copies SIGINT's disposition to
    # SIGTERM, so an inherited "ignore" would make it unstoppable (reference/dagster.md G7).
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        # Wait in short steps: a signal can be delivered to any thread, and one delivered to
        # a library's thread would not wake a main thread blocked in a plain wait(), which
        # is where Python runs its handlers.
        while process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.5)
    except KeyboardInterrupt:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        console.print("stopped")
    finally:
        _forget_heartbeats(context)


def refuse_a_second_daemon(instance: DagsterInstance, database: str) -> None:
    """Two `tally ui` on one instance ran two daemons, which Dagster does not support: each
    logged "Another SENSOR daemon is still sending heartbeats" every 30 s, and both evaluated
    every schedule and sensor."""
    beats = instance.get_daemon_heartbeats()
    if not beats:
        return
    age = time.time() - max(beat.timestamp for beat in beats.values())
    if age < LIVE_HEARTBEAT_SECONDS:
        raise CommandFailed(
            f"another `tally ui` is running on this Dagster instance (database {database}): "
            f"its daemon's last heartbeat was {age:.0f} s ago. Stop it first: Dagster does not "
            "support two daemons on one instance (each evaluates every schedule and sensor). "
            f"(A `tally ui` killed without stopping is forgotten {LIVE_HEARTBEAT_SECONDS:.0f} s "
            "after its last heartbeat.)"
        )


def _forget_heartbeats(context: StoreContext) -> None:
    """Our daemon has stopped: its last heartbeats must not make the next `tally ui` wait."""
    settings = context.settings
    # best effort: the heartbeats only let a restart start at once
    with contextlib.suppress(Exception):
        instance = shared_instance(
            context.url, settings.resolved_data_dir, settings.dagster_database
        )
        with instance:
            instance.wipe_daemon_heartbeats()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
