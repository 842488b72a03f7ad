"""Cheap, deterministic filler text for generated transcripts."""

from __future__ import annotations

import random
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingestion.demo.truth import GroundTruth

_WORDS = [
    "the",
    "agent",
    "reads",
    "the",
    "file",
    "and",
    "updates",
    "the",
    "function",
    "so",
    "that",
    "the",
    "tests",
    "pass",
    "while",
    "keeping",
    "the",
    "public",
    "interface",
    "stable;",
    "it",
    "then",
    "runs",
    "the",
    "suite,",
    "inspects",
    "the",
    "failure,",
    "fixes",
    "the",
    "edge",
    "case",
    "with",
    "an",
    "empty",
    "list,",
    "and",
    "commits",
    "the",
    "change",
    "with",
    "a",
    "message",
    "that",
    "references",
    "the",
    "issue",
    "number.",
    "def",
    "parse(line):",
    "return",
    "json.loads(line)",
    "if",
    "line",
    "else",
    "None",
    "#",
    "TODO",
]


class TextPool:
    def __init__(self, rng: random.Random, size: int = 1 << 20) -> None:
        words = [rng.choice(_WORDS) for _ in range(size // 5)]
        self.text = " ".join(words)
        self.rng = rng

    def take(self, length: int) -> str:
        length = max(1, min(length, len(self.text) - 1))
        start = self.rng.randrange(0, len(self.text) - length)
        return self.text[start : start + length]


def stamp(at: datetime) -> str:
    """A timestamp as the agents write them: UTC, milliseconds, `Z`."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


class SessionWriter:
    """What the demo writers share: where they write, their randomness, and the truth."""

    def __init__(self, root: Path, rng: random.Random, pool: TextPool, truth: GroundTruth) -> None:
        self.root = root
        self.rng = rng
        self.pool = pool
        self.truth = truth

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
