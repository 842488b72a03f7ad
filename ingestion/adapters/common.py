"""Helpers shared by the file adapters: timestamps, token fields, tool-call details."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from schemas.limits import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    MAX_COUNT,
    key_too_long,
    timestamp_in_range,
)
from schemas.money import USD_LIMIT

_EPOCH_MS_THRESHOLD = 10_000_000_000
# `git commit` prints "[branch 1a2b3c4] message" (or "[branch (root-commit) 1a2b3c4]").
_COMMIT_LINE = re.compile(r"^\[[^\]\n]*?\b([0-9a-f]{7,40})\]\s", re.MULTILINE)
_PATCH_FILE = re.compile(r"^\*\*\* (?:Update|Add|Delete) File: (.+)$", re.MULTILINE)
FILE_EDITING_TOOLS = {"Edit", "Write", "MultiEdit", "NotebookEdit"}


class InvalidRecord(ValueError):
    """A record that cannot be loaded; the message is the reject reason."""


# An escaped backslash (skipped, so that `\\ud83d` stays text), a surrogate pair, or a lone
# half of one, in a JSON line's bytes.
_SURROGATE_ESCAPES = re.compile(
    rb"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    rb"|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
)
_LONE_SURROGATE_ESCAPE_LENGTH = len(rb"\ud83d")


def lone_surrogates_replaced(line: bytes) -> bytes:
    """The line with each lone half of a surrogate pair written as U+FFFD. JavaScript's
    JSON.stringify writes one as an escape (`\\ud83d`: an emoji cut in two by a truncated
    string, as Claude Code's transcripts hold), which orjson refuses, as PostgreSQL would."""
    return _SURROGATE_ESCAPES.sub(
        lambda match: b"\\ufffd" if len(match[0]) == _LONE_SURROGATE_ESCAPE_LENGTH else match[0],
        line,
    )


def _read_timestamp(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        seconds = value / 1000 if value > _EPOCH_MS_THRESHOLD else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def parse_timestamp(value: Any) -> datetime | None:
    """An aware datetime, or None for anything that is not a timestamp in [2000, 2100)."""
    parsed = _read_timestamp(value)
    return parsed if parsed is not None and timestamp_in_range(parsed) else None


def require_timestamp(value: Any, field: str = "timestamp") -> datetime:
    parsed = _read_timestamp(value)
    if parsed is None:
        raise InvalidRecord(f"{field} is missing or not a timestamp: {value!r:.60}")
    if not timestamp_in_range(parsed):
        raise InvalidRecord(
            f"{field} {value!r:.40} lies outside {EARLIEST_TIMESTAMP.year}-"
            f"{LATEST_TIMESTAMP.year - 1}: a broken clock or a damaged record"
        )
    return parsed


def token_count(container: dict[str, Any], field: str, where: str, limit: int = MAX_COUNT) -> int:
    """A non-negative integer token field (absent or null counts as 0), at most `limit`."""
    value = container.get(field)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        if not (isinstance(value, float) and value.is_integer() and value >= 0):
            raise InvalidRecord(
                f"{where}.{field} must be a non-negative integer, got {value!r:.40}"
            )
        value = int(value)
    if value < 0:
        raise InvalidRecord(f"{where}.{field} must be a non-negative integer, got {value}")
    if value > limit:
        raise InvalidRecord(f"{where}.{field} is {value:.3g}, above the limit of {limit:.0e}")
    return value


def optional_str(value: Any) -> str | None:
    """Non-empty text, else None. NUL characters are dropped, as COPY drops them: PostgreSQL
    text and jsonb cannot hold one (a parser's state, a JSON document, would fail to store)."""
    if not isinstance(value, str) or not value:
        return None
    if "\x00" in value:
        return value.replace("\x00", "") or None
    return value


def key_text(value: Any, where: str) -> str | None:
    """`optional_str` for an id or name that is part of a stored key. Absent (or empty) it is
    None; any other value that is not text, or text longer than MAX_KEY_CHARS, refuses the
    record with the reason: dropped silently, a number or an object where an id belongs
    would lose the record without a word, and an over-long id would fail the batch
    (PostgreSQL could not index it)."""
    if value is not None and not isinstance(value, str):
        raise InvalidRecord(f"{where} must be text, got {value!r:.40}")
    text = optional_str(value)
    reason = key_too_long(where, text) if text is not None else None
    if reason:
        raise InvalidRecord(reason)
    return text


def mcp_server_of(tool_name: str | None) -> str | None:
    """`mcp__<server>__<tool>` names the MCP server; other tools have none."""
    if tool_name and tool_name.startswith("mcp__"):
        parts = tool_name.split("__")
        if len(parts) >= 3 and parts[1]:
            return parts[1]
    return None


def edited_files(tool_name: str | None, tool_input: dict[str, Any]) -> list[str]:
    """The file a Claude Code editing tool (Edit, Write, MultiEdit, NotebookEdit) wrote."""
    if tool_name in FILE_EDITING_TOOLS:
        path = tool_input.get("file_path") or tool_input.get("notebook_path")
        if isinstance(path, str) and path:
            return [path]
    return []


def runs_git_commit(tool_input: dict[str, Any]) -> bool:
    """Whether a shell tool's command makes a commit (whose hash its output then prints)."""
    command = tool_input.get("command")
    return isinstance(command, str) and "git commit" in command


def commit_hashes_in(output: str) -> list[str]:
    return sorted(set(_COMMIT_LINE.findall(output)))


def patched_files(patch: str) -> list[str]:
    return sorted({path.strip() for path in _PATCH_FILE.findall(patch)})


# Argument names under which tools (Paperclip's and Pigeon's MCP servers, issue trackers)
# pass the issue they act on; compared lowercased without `_` or `-`.
ISSUE_ARGUMENTS = frozenset({
    "issue", "issueid", "issueidentifier", "issuenumber", "issues", "issueids",
    "card", "cardid", "cardnumber", "cards", "cardids", "ticket", "ticketid", "taskid",
})  # fmt: skip
_NUMBER = re.compile(r"^#?(\d{1,9})$")


def issue_refs_in(arguments: Any) -> list[str]:
    """The issues a tool call's arguments name: upstream ids and identifiers as given, bare
    numbers as `#N` (resolved later within the session's project)."""
    if not isinstance(arguments, dict):
        return []
    found: set[str] = set()
    for key, value in arguments.items():
        if not isinstance(key, str) or key.lower().replace("_", "").replace("-", "") \
                not in ISSUE_ARGUMENTS:  # fmt: skip
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool):
                continue
            if isinstance(item, int) and item > 0:
                found.add(f"#{item}")
            elif isinstance(item, str) and 0 < len(item.strip()) <= 200:
                text = item.strip()
                number = _NUMBER.match(text)
                found.add(f"#{number[1]}" if number else text)
    return sorted(found)


def result_text(content: Any) -> str:
    """A Claude `tool_result`'s content as text: a string, or the text of its blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for item in content:
            if isinstance(item, dict) and isinstance(item.get("text"), str):
                parts.append(item["text"])
        return "\n".join(parts)
    return ""


def estimate_tokens(chars: int) -> int:
    # The usual 4-characters-per-token estimate (what Pigeon's responseTokens uses).
    return (chars + 3) // 4


def decimal_string(value: Any) -> str | None:
    """A tool-reported cost as exact decimal text: a JSON number, or a number written as text
    (`"0.0123"`, as tools that keep decimals exact write it); anything else is no cost."""
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        if not number.is_finite():
            return None
        value = number
    elif isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value < 0:
        raise InvalidRecord(f"costUSD must not be negative, got {value}")
    if not value < USD_LIMIT:  # NaN and infinities fail this too
        raise InvalidRecord(f"costUSD is {value:.3g}, not below the limit of {USD_LIMIT:.0e}")
    return repr(value) if isinstance(value, float) else str(value)


_TIMESTAMP_KEY = b'"timestamp":"'


def looks_like_object(line: bytes) -> bool:
    """A cheap shape check for lines tally skips without parsing: anything that fails it is
    parsed in full, so a damaged line still gets its precise reject reason."""
    return line[:1] == b"{" and line.rstrip()[-1:] == b"}"


def top_level_timestamp(line: bytes) -> datetime | None:
    """The first `"timestamp":"…"` of a compact JSON line, without parsing the line."""
    start = line.find(_TIMESTAMP_KEY)
    if start < 0:
        return None
    start += len(_TIMESTAMP_KEY)
    end = line.find(b'"', start, start + 40)
    if end < 0:
        return None
    return parse_timestamp(line[start:end].decode("ascii", "replace"))
