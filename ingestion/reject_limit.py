"""How many rejects of one file a run records one by one.

A file of junk among the transcripts (a binary file, a log that is not a transcript, a disk
error's garbage) would otherwise add a row per line: 21 MB of junk lines made 500,000 rejects
and 258 MB of `ingestion_rejects`. A run records the first MAX_RECORDED_PER_FILE rejects of
each file, each naming its record and reason; the rest of that file's rejects in the run are
counted in one more row, which names how many, where they end, and their commonest reasons.
The run's own count (`ingestion_runs.rejects`, the closing summary) still counts every one."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

from ingestion.adapters.records import RejectRecord

MAX_RECORDED_PER_FILE = 1000
REASONS_NAMED = 3


@dataclass
class UnrecordedRejects:
    """A file's rejects past the recorded ones, in this run."""

    first: RejectRecord
    count: int = 0
    last_position: str = ""
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, reject: RejectRecord) -> None:
        self.count += 1
        self.last_position = reject.position
        self.reasons[reject.reason[:120]] += 1

    def reason(self) -> str:
        named = "; ".join(
            f"{reason} ({n:,})" for reason, n in self.reasons.most_common(REASONS_NAMED)
        )
        others = len(self.reasons) - REASONS_NAMED
        return (
            f"{self.count:,} more records of this file were rejected in this run, from position "
            f"{self.first.position} to {self.last_position}, and counted but not recorded one by "
            f"one (the first {MAX_RECORDED_PER_FILE:,} are): {named}"
            + (f"; and {others:,} other reasons" if others > 0 else "")
        )

    def fingerprint(self, run_id: int) -> str:
        """The row's key within its file and position: one such row per file and run."""
        return hashlib.sha1(f"unrecorded rejects of run {run_id}".encode()).hexdigest()


@dataclass
class RejectLimit:
    """What a run has recorded of each file so far. `split` leaves the counts alone until
    `commit`: a batch whose transaction rolls back is split again when it is retried."""

    recorded: Counter[str] = field(default_factory=Counter)
    unrecorded: dict[str, UnrecordedRejects] = field(default_factory=dict)

    def split(self, rejects: list[RejectRecord]) -> tuple[list[RejectRecord], RejectLimit]:
        """The rejects to record one by one, and the counts once the batch is committed."""
        if not rejects:
            return [], self
        recorded = Counter(self.recorded)
        unrecorded = {
            path: UnrecordedRejects(u.first, u.count, u.last_position, Counter(u.reasons))
            for path, u in self.unrecorded.items()
        }
        kept = []
        for reject in rejects:
            if recorded[reject.location] < MAX_RECORDED_PER_FILE:
                recorded[reject.location] += 1
                kept.append(reject)
                continue
            if reject.location not in unrecorded:
                unrecorded[reject.location] = UnrecordedRejects(first=reject)
            unrecorded[reject.location].add(reject)
        return kept, RejectLimit(recorded, unrecorded)

    def grown(self, before: RejectLimit) -> list[UnrecordedRejects]:
        """The files whose unrecorded count this batch raised."""
        return [
            u
            for path, u in self.unrecorded.items()
            if path not in before.unrecorded or before.unrecorded[path].count != u.count
        ]
