"""Generate a demo corpus laid out like the real homes:
`<root>/claude/projects/<project-dir>/<session>.jsonl` and
`<root>/codex/sessions/YYYY/MM/DD/rollout-*.jsonl`."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ingestion.demo.claude import ClaudeSessionWriter
from ingestion.demo.codex import CodexSessionWriter
from ingestion.demo.text import TextPool
from ingestion.demo.truth import GroundTruth

DEFAULT_START = datetime(2026, 10, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Corpus:
    root: Path
    truth: GroundTruth

    @property
    def claude_dir(self) -> Path:
        return self.root / "claude" / "projects"

    @property
    def codex_dir(self) -> Path:
        return self.root / "codex" / "sessions"


def generate_corpus(
    root: Path,
    *,
    megabytes: float = 5.0,
    seed: int = 7,
    days: int = 30,
    start: datetime = DEFAULT_START,
    codex_share: float = 0.25,
) -> Corpus:
    """Write sessions until the corpus holds about `megabytes` MB."""
    rng = random.Random(seed)
    pool = TextPool(rng)
    truth = GroundTruth()
    claude = ClaudeSessionWriter(root / "claude" / "projects", rng, pool, truth)
    codex = CodexSessionWriter(root / "codex" / "sessions", rng, pool, truth)
    target = int(megabytes * 1_000_000)
    written = 0
    while written < target:
        session_start = start + timedelta(seconds=rng.uniform(0, days * 86_400))
        if rng.random() < codex_share:
            written += codex.write_session(session_start)
        else:
            written += claude.write_session(session_start)
    return Corpus(root, truth)
