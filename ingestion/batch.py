"""A batch of parsed records on its way to the store, deduplicated as it fills."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingestion.adapters.records import (
    RejectRecord,
    SessionRecord,
    ToolCallRecord,
    UsageRecord,
    merge_usage,
)


@dataclass
class Batch:
    usage: dict[tuple[str, str], UsageRecord] = field(default_factory=dict)
    sessions: dict[str, SessionRecord] = field(default_factory=dict)
    tool_calls: dict[str, ToolCallRecord] = field(default_factory=dict)
    rejects: list[RejectRecord] = field(default_factory=list)
    merged_in_batch: int = 0

    def add_usage(self, record: UsageRecord) -> None:
        self.session(record.session_key)  # every usage row's session is upserted with it
        key = record.key
        existing = self.usage.get(key)
        if existing is None:
            self.usage[key] = record
        else:
            self.usage[key] = merge_usage(existing, record)
            self.merged_in_batch += 1

    def drop_sidechain_replays(self) -> int:
        """Drop `/btw` replays: a sidechain copy of a message that also appears, under another
        request id, outside a sidechain (ccusage #913). The loader applies the same rule
        against rows already stored."""
        main_requests: dict[str, set[str]] = {}
        for message_id, request_id in self.usage:
            if not self.usage[(message_id, request_id)].is_sidechain:
                main_requests.setdefault(message_id, set()).add(request_id)
        replays = [
            key
            for key, record in self.usage.items()
            if record.is_sidechain and main_requests.get(key[0], {key[1]}) - {key[1]}
        ]
        for key in replays:
            del self.usage[key]
        self.merged_in_batch += len(replays)
        return len(replays)

    def session(self, key: str) -> SessionRecord:
        record = self.sessions.get(key)
        if record is None:
            record = self.sessions[key] = SessionRecord(session_key=key)
        return record

    def add_tool_call(self, record: ToolCallRecord) -> None:
        self.session(record.session_key)
        existing = self.tool_calls.get(record.call_key)
        if existing is None:
            self.tool_calls[record.call_key] = record
        else:
            existing.merge(record)

    def absorb(self, other: Batch) -> None:
        """Merge another batch (a parsed piece) into this one."""
        for record in other.usage.values():
            self.add_usage(record)
        for key, session in other.sessions.items():
            mine = self.sessions.get(key)
            if mine is None:
                self.sessions[key] = session
            else:
                mine.merge(session)
        for record in other.tool_calls.values():
            self.add_tool_call(record)
        self.rejects.extend(other.rejects)
        self.merged_in_batch += other.merged_in_batch

    def reject(self, location: str, position: str, reason: str, raw: bytes) -> None:
        self.rejects.append(RejectRecord(location, position, reason, raw[:300]))

    def __len__(self) -> int:
        return len(self.usage) + len(self.tool_calls) + len(self.rejects)

    def is_empty(self) -> bool:
        return not (self.usage or self.sessions or self.tool_calls or self.rejects)
