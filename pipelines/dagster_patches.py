"""One fix to the pinned Dagster (1.13.27), applied where tally runs Dagster code.

A run waiting inside for a pool slot (the "warehouse" while another run writes it) is meant
to sleep until its next claim check, backing off to one every 15 s. The sleep is
`min([0, *time_to_each_check])`, never more than 0 s, so the run polls without sleeping: one
core of two at 100% for as long as the other run writes, slowing that run down too, and
SIGINT/SIGTERM go unanswered until a slot comes. Upstream noticed the same thing
(dagster-io/dagster#20367, "we would always end up sleeping 0 for concurrency checks", closed
without merging). The replacement sleeps until the earliest pending check, never less than
0 s; everything else about claiming is Dagster's."""

from __future__ import annotations

import time
from typing import Any


def interval_to_next_pending_claim_check(self: Any) -> float:
    """Seconds until the earliest pending claim check is due (0 when one is due now, or when
    no claim is pending)."""
    if not self._pending_claims or not self._pending_timeouts:
        return 0.0
    return max(0.0, min(self._pending_timeouts.values()) - time.time())


def patch_pool_wait() -> None:
    from dagster._core.execution.plan.instance_concurrency_context import (
        InstanceConcurrencyContext,
    )

    patched = interval_to_next_pending_claim_check
    InstanceConcurrencyContext.interval_to_next_pending_claim_check = patched  # type: ignore
