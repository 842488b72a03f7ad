"""What every JSONL adapter shares: a line whose shape breaks an adapter's rules in a way no
rule names is rejected with what broke, and the lines after it still load."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ingestion.adapters.base import JsonlParser
from ingestion.batch import Batch


class Fragile(JsonlParser):
    """Reads `n` as a number, as an adapter's rule might, without checking its type."""

    parse_markers = (b'"n"',)
    path = "/logs/fragile.jsonl"

    def __init__(self) -> None:
        self.seen: list[int] = []

    def observe(self, at: datetime, batch: Batch) -> None:
        pass

    def handle_object(self, obj: dict[str, Any], offset: int, batch: Batch) -> int:
        self.seen.append(obj["n"] + 1)
        return 0


def test_an_unforeseen_shape_rejects_the_line_not_the_file():
    parser, batch = Fragile(), Batch()
    for offset, line in enumerate([b'{"n":1}', b'{"n":"one"}', b'{"m":2,"n":null}', b'{"n":3}']):
        parser.handle_line(offset, line, batch)
    assert parser.seen == [2, 4]
    assert [(r.location, r.position) for r in batch.rejects] == [
        ("/logs/fragile.jsonl", "1"),
        ("/logs/fragile.jsonl", "2"),
    ]
    assert batch.rejects[0].reason.startswith("unreadable record (TypeError: can only")
    assert batch.rejects[0].excerpt == b'{"n":"one"}'
