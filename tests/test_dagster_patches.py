"""The one fix tally makes to the pinned Dagster (`pipelines/dagster_patches.py`)."""

from __future__ import annotations

import time

import dagster as dg
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

from pipelines.dagster_patches import interval_to_next_pending_claim_check, patch_pool_wait


def test_a_run_waiting_for_a_pool_slot_sleeps_until_its_next_check():
    """Dagster's own interval was `min([0, ...])`, never above 0 s: a run waiting for the
    warehouse polled without sleeping, a core at 100% for as long as the writer wrote."""
    patch_pool_wait()
    with dg.instance_for_test() as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("warehouse", 1)
        assert storage.claim_concurrency_slot("warehouse", "writer", "usage_priced").is_claimed
        waiting = dg.DagsterRun(job_name="daily_costs_job", run_id="waiting")
        with InstanceConcurrencyContext(instance, waiting) as context:
            assert not context.has_pending_claims()
            assert context.interval_to_next_pending_claim_check() == 0.0
            assert not context.claim("warehouse", "usage_priced")
            first = context.interval_to_next_pending_claim_check()
            assert 0.5 < first <= 1.0  # Dagster's first back-off is 1 s
            time.sleep(first)
            assert context.interval_to_next_pending_claim_check() == 0.0  # due: check now
            assert not context.claim("warehouse", "usage_priced")  # still held
            assert 1.0 < context.interval_to_next_pending_claim_check() <= 15.0  # backs off
            storage.free_concurrency_slots_for_run("writer")
            time.sleep(context.interval_to_next_pending_claim_check())
            assert context.claim("warehouse", "usage_priced")
            assert not context.has_pending_claims()
            context.free_step("usage_priced")


def test_the_code_location_applies_it():
    """Every run the daemon or the UI launches loads the definitions module first."""
    import pipelines.definitions  # noqa: F401

    assert InstanceConcurrencyContext.interval_to_next_pending_claim_check is (
        interval_to_next_pending_claim_check
    )
