"""The bounds of what tally accepts in one record, from files and over the API alike.

Columns are BIGINT and rollups sum them in Int64: a count from a damaged or hostile record
(1e20 input tokens) must be refused with a reason instead of failing the COPY of the batch
that holds it, or overflowing a sum. A timestamp outside [2000, 2100) is a broken clock or a
forged record; PostgreSQL would store year 1 BC, which Python cannot read back, and every
report and materialisation touching it would fail. No real request comes near these bounds."""

from __future__ import annotations

from datetime import UTC, datetime

# tokens, characters or requests of one record
MAX_COUNT = 10**12
# one call's duration: about 115 days
MAX_DURATION_MS = 10**10
# an id or name that is part of a stored key (message and request ids, tool-call ids, tool
# names, session ids): an index entry holds at most 2,704 bytes, and no real id comes near
MAX_KEY_CHARS = 300
# a log file's path, in bytes: it keys the file's cursor (beside the source's name) in an
# index whose entries hold at most 2,704 bytes; Linux allows paths of 4,096
MAX_PATH_BYTES = 2048
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TIMESTAMP = datetime(2100, 1, 1, tzinfo=UTC)


def key_too_long(name: str, value: str) -> str | None:
    """Why `value` cannot be an id or name of a stored key, if it is longer than
    MAX_KEY_CHARS."""
    if len(value) <= MAX_KEY_CHARS:
        return None
    return f"{name} is {len(value):,} characters long; ids and names have at most {MAX_KEY_CHARS}"


def timestamp_in_range(at: datetime) -> bool:
    return EARLIEST_TIMESTAMP <= at < LATEST_TIMESTAMP
