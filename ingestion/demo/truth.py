"""Ground truth kept by the generators: what each session really used, per model."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from schemas.warehouse import TOKEN_NAMES

TOKEN_FIELDS = TOKEN_NAMES


@dataclass
class GroundTruth:
    # (source, root session key, model) -> {"requests": n, token field: n}
    usage: dict[tuple[str, str, str], dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: dict.fromkeys(("requests", *TOKEN_FIELDS), 0))
    )
    tool_calls: int = 0
    commits: set[str] = field(default_factory=set)
    files: int = 0
    bytes: int = 0

    def request(self, source: str, session: str, model: str, **tokens: int) -> None:
        row = self.usage[(source, session, model)]
        row["requests"] += 1
        for name, value in tokens.items():
            row[name] += value

    def by_session(self) -> dict[tuple[str, str], dict[str, int]]:
        totals: dict[tuple[str, str], dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(("requests", *TOKEN_FIELDS), 0)
        )
        for (source, session, _), row in self.usage.items():
            for name, value in row.items():
                totals[(source, session)][name] += value
        return dict(totals)

    def totals(self) -> dict[str, int]:
        out = dict.fromkeys(("requests", *TOKEN_FIELDS), 0)
        for row in self.usage.values():
            for name, value in row.items():
                out[name] += value
        return out
