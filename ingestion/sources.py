"""The file sources tally reads, by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ingestion.adapters import claude_code, codex
from ingestion.batch import Batch


class LineParser(Protocol):
    def handle_line(self, offset: int, line: bytes, batch: Batch) -> int: ...

    def state(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class FileSource:
    name: str  # stored in the `source` columns
    label: str  # as typed on the command line
    discover: Callable[[Path], list[Path]]
    parser: Callable[[Path, Path, dict[str, Any]], LineParser]


CLAUDE_CODE = FileSource(
    name=claude_code.SOURCE,
    label="claude-code",
    discover=claude_code.discover,
    parser=lambda path, root, state: claude_code.ClaudeTranscriptParser(
        claude_code.FileContext(path, root)
    ),
)
CODEX = FileSource(
    name=codex.SOURCE,
    label="codex",
    discover=codex.discover,
    parser=lambda path, root, state: codex.CodexRolloutParser(path, state),
)
FILE_SOURCES = {source.label: source for source in (CLAUDE_CODE, CODEX)}
