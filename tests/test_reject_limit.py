"""The per-file bound on rejects recorded one by one (pure: no database)."""

from __future__ import annotations

from ingestion.adapters.records import RejectRecord
from ingestion.reject_limit import MAX_RECORDED_PER_FILE, RejectLimit


def rejects(location: str, count: int, start: int = 0) -> list[RejectRecord]:
    return [
        RejectRecord(location, str(n), "invalid JSON", b"x") for n in range(start, start + count)
    ]


def test_a_split_changes_nothing_until_it_is_kept():
    """A batch whose transaction rolls back is split again on the retry: the first split
    must not have used up the file's allowance."""
    limit = RejectLimit()
    batch = rejects("a.jsonl", MAX_RECORDED_PER_FILE + 3) + rejects("b.jsonl", 2)
    first, after = limit.split(batch)
    again, _ = limit.split(batch)
    assert first == again and len(first) == MAX_RECORDED_PER_FILE + 2
    assert not limit.recorded and not limit.unrecorded
    assert [u.count for u in after.grown(limit)] == [3]


def test_later_batches_of_a_file_add_to_its_one_unrecorded_row():
    limit = RejectLimit()
    _, limit = limit.split(rejects("a.jsonl", MAX_RECORDED_PER_FILE + 1))
    kept, grown = limit.split(rejects("a.jsonl", 4, start=10_000))
    assert kept == []
    (unrecorded,) = grown.grown(limit)
    assert (unrecorded.count, unrecorded.first.position, unrecorded.last_position) == (
        5, str(MAX_RECORDED_PER_FILE), "10003")  # fmt: skip
    assert unrecorded.fingerprint(7) == limit.unrecorded["a.jsonl"].fingerprint(7)
    _, unchanged = grown.split(rejects("b.jsonl", 1))
    assert unchanged.grown(grown) == []
