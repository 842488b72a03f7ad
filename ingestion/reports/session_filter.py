"""What narrows a report to some sessions' requests (`--project`, `--agent`, `--source`).
Its own module: the CLI builds one before it imports polars, which the reports need."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SessionFilter:
    """A report narrowed to the requests of one project's, agent's or tool's sessions (the
    values reports show; None: any)."""

    project: str | None = None
    agent: str | None = None
    source: str | None = None

    def params(self) -> dict[str, str | None]:
        return {"project": self.project, "agent": self.agent, "source": self.source}

    def words(self) -> str:
        """The narrowing in words ("project P, agent A"); "" when there is none."""
        return ", ".join(f"{key} {value}" for key, value in self.params().items() if value)
