"""What a work-graph source adapter (Paperclip, Pigeon) hands the loader: canonical records
keyed by upstream ids, references between them still as upstream ids, and the rows it could
not map, with the reason.

Each table is a list of plain dicts; the keys each table takes are in `loader.TABLES`.
References (`project`, `issue`, `agent`, ...) name the upstream id of the referenced record;
the loader resolves them and rejects a record whose required reference dangles.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson

# Canonical issue statuses (Paperclip's set; Pigeon's column roles map onto it).
ISSUE_STATUSES = frozenset(
    {"backlog", "todo", "in_progress", "in_review", "blocked", "done", "cancelled"}
)


@dataclass(frozen=True)
class UpstreamReject:
    table: str  # upstream table the row came from
    row_id: str  # its upstream id, or its position when it has none
    reason: str
    row: dict[str, Any]
    # the entity (`Ref.entity`) its row would have become, so that a reference to it can
    # say it was rejected; None for rows no other record refers to
    entity: str | None = None

    def excerpt(self) -> str:
        return row_excerpt(self.row)


def row_excerpt(row: dict[str, Any]) -> str:
    """The row as JSON, for a reject. orjson refuses an integer beyond 64 bits, which an
    upstream JSON column may hold (PostgreSQL's jsonb keeps 1e400 as a 401-digit integer)."""
    try:
        text = orjson.dumps(row, default=str).decode()
    except TypeError:
        text = json.dumps(row, default=str)
    return text[:2000]


@dataclass
class WorkGraph:
    # the upstream's own record of the company (id, name, ...), kept on the tally company
    company: dict[str, Any] | None = None
    agents: list[dict[str, Any]] = field(default_factory=list)
    goals: list[dict[str, Any]] = field(default_factory=list)
    projects: list[dict[str, Any]] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)
    status_changes: list[dict[str, Any]] = field(default_factory=list)
    activity: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    commits: list[dict[str, Any]] = field(default_factory=list)
    heartbeat_runs: list[dict[str, Any]] = field(default_factory=list)
    run_events: list[dict[str, Any]] = field(default_factory=list)
    hints: list[dict[str, Any]] = field(default_factory=list)
    cost_events: list[dict[str, Any]] = field(default_factory=list)
    finance_events: list[dict[str, Any]] = field(default_factory=list)
    budget_policies: list[dict[str, Any]] = field(default_factory=list)
    budget_incidents: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[UpstreamReject] = field(default_factory=list)
    # upstream table -> the entity its rows become (the adapter knows its upstream's names)
    entities: dict[str, str] = field(default_factory=dict)
    # Whether the graph holds every issue of the projects it holds (a whole read of the
    # upstream): a stored issue of one of those projects that it lacks was deleted upstream.
    complete: bool = False

    def reject(self, table: str, row_id: Any, reason: str, row: dict[str, Any]) -> None:
        self.rejects.append(
            UpstreamReject(table, str(row_id), reason, row, self.entities.get(table))
        )
