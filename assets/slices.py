"""Cutting a window of days into slices that each hold a bounded number of rows: what a
materialisation, or a report pricing days live, holds in memory at once; and reading the next
slice while the current one is worked on. Free of Dagster and of thread pools until used, so
that a report importing it starts fast."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future

T = TypeVar("T")


def consecutive_days(days: Iterable[date]) -> list[tuple[date, date]]:
    """Runs of consecutive days, as [first, end) windows, in order."""
    runs: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if runs and runs[-1][1] == day:
            runs[-1] = (runs[-1][0], day + timedelta(days=1))
        else:
            runs.append((day, day + timedelta(days=1)))
    return runs


def window_slices(
    start: date, end: date, rows_by_day: Mapping[date, int], max_rows: int
) -> list[tuple[date, date]]:
    """[start, end) cut into consecutive windows of whole days, each holding at most
    `max_rows` rows (a day holding more is a window of its own), covering every day: a day
    without rows is still replaced, which clears what an earlier materialisation wrote.

    An asset holds one slice in memory at a time, so a backfill of every day since the first
    transcript needs what one slice needs, not what the whole range would."""
    slices: list[tuple[date, date]] = []
    slice_start, held = start, 0
    day = start
    while day < end:
        rows = rows_by_day.get(day, 0)
        if day > slice_start and held + rows > max_rows:
            slices.append((slice_start, day))
            slice_start, held = day, 0
        held += rows
        day += timedelta(days=1)
    if slice_start < end or not slices:
        slices.append((slice_start, end))
    return slices


def read_ahead(
    slices: list[tuple[date, date]], read: Callable[[date, date], T]
) -> Iterator[tuple[tuple[date, date], T]]:
    """Each slice with what `read` gives for it, the next slice read in a thread meanwhile:
    the canonical store's query and the decoding of its answer overlap with the work on the
    slice before (pricing, the warehouse write), which leaves a core idle otherwise. At most
    two slices' reads are held at once."""
    from concurrent.futures import ThreadPoolExecutor

    if not slices:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as pool:
        pending: Future[T] = pool.submit(read, *slices[0])
        for index, window in enumerate(slices):
            result = pending.result()
            if index + 1 < len(slices):
                pending = pool.submit(read, *slices[index + 1])
            yield window, result
            del result
