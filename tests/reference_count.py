"""An independent count of tokens by the reference rule (`reference/agent-logs.md`),
written without any of tally's code, to check tally's ingestion against.

Claude: every assistant copy (main file, inline sidechains, `agent_progress` nested
messages, subagent files) grouped by (message.id, requestId); the copy with the most tokens
wins; `<synthetic>` dropped; a sidechain copy of a message that also appears outside a
sidechain under another request id is dropped. Session = the top-level session.
Codex: per file, deltas of consecutive cumulative totals (repeats add nothing), after the
replayed parent history of subagent rollouts.

`ccusage_btw_quirk=True` reproduces ccusage 20.0.24, which still counts such a replay when
the last copy of the original message before it was a plain duplicate (an identical line,
neither the first copy nor a more complete one that replaced it), as in builds that write
the final usage on every content-block line.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

FIELDS = (
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "requests",
)


def _claude_copies(root: Path):
    for path in sorted(root.rglob("*.jsonl")):
        rel = path.relative_to(root).parts
        session = rel[1] if len(rel) >= 3 else path.stem
        for raw in path.read_bytes().splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(line, dict):
                continue
            if line.get("type") == "progress":
                data = line.get("data") or {}
                if data.get("type") == "agent_progress":
                    nested = data.get("message") or {}
                    if nested.get("type") == "assistant":
                        yield session, nested
                continue
            if line.get("type") == "assistant":
                yield session, line


def claude_totals(root: Path, ccusage_btw_quirk: bool = False) -> dict[tuple[str, str], dict]:
    best: dict[tuple[str, str], tuple[int, str, dict, bool]] = {}
    last_outcome: dict[str, str] = {}  # message id -> outcome of its last non-sidechain copy
    order: list[tuple[str, str]] = []
    for session, line in _claude_copies(root):
        message = line.get("message") or {}
        u = message.get("usage")
        if not isinstance(u, dict) or message.get("model") == "<synthetic>":
            continue
        key = (message.get("id"), line.get("requestId"))
        total = sum(
            u.get(k, 0)
            for k in (
                "input_tokens",
                "output_tokens",
                "cache_creation_input_tokens",
                "cache_read_input_tokens",
            )
        )
        sidechain = line.get("isSidechain") is True
        if key in best:
            outcome = "replaced" if total > best[key][0] else "duplicate"
            if outcome == "replaced":
                best[key] = (total, session, line, sidechain)
        else:
            outcome = "added"
            best[key] = (total, session, line, sidechain)
            order.append(key)
        if not sidechain:
            last_outcome[key[0]] = outcome
    main_requests: dict[str, set[str]] = defaultdict(set)
    for (message_id, request_id), (_, _, _, sidechain) in best.items():
        if not sidechain:
            main_requests[message_id].add(request_id)
    out: dict[tuple[str, str], dict] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for key in order:
        _, session, line, sidechain = best[key]
        others = main_requests.get(key[0], set()) - {key[1]}
        quirk_keeps = ccusage_btw_quirk and last_outcome.get(key[0]) == "duplicate"
        if sidechain and others and not quirk_keeps:
            continue
        u = line["message"]["usage"]
        row = out[(session, line["message"]["model"])]
        row["input_tokens"] += u.get("input_tokens", 0)
        row["output_tokens"] += u.get("output_tokens", 0)
        row["cache_read_tokens"] += u.get("cache_read_input_tokens", 0)
        row["cache_write_tokens"] += u.get("cache_creation_input_tokens", 0)
        row["requests"] += 1
    return dict(out)


def codex_totals(root: Path) -> dict[tuple[str, str], dict]:
    out: dict[tuple[str, str], dict] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for path in sorted(root.rglob("*.jsonl")):
        lines = [json.loads(raw) for raw in path.read_bytes().splitlines() if raw.strip()]
        session = "-".join(path.stem.split("-")[-5:])
        parent = None
        model = None
        previous = None
        counts = [
            line
            for line in lines
            if line.get("type") == "event_msg"
            and (line.get("payload") or {}).get("type") == "token_count"
            and (line["payload"].get("info"))
        ]
        replay_second = None
        if len(counts) >= 2 and counts[0]["timestamp"][:19] == counts[1]["timestamp"][:19]:
            replay_second = counts[0]["timestamp"][:19]
        skipping = True
        for line in lines:
            payload = line.get("payload") or {}
            if line["type"] == "session_meta":
                session = payload.get("id", session)
                spawn = (
                    (
                        (payload.get("source") or {})
                        if isinstance(payload.get("source"), dict)
                        else {}
                    )
                    .get("subagent", {})
                    .get("thread_spawn")
                )
                if spawn:
                    parent = spawn["parent_thread_id"]
            elif line["type"] == "turn_context":
                model = payload.get("model", model)
            elif line["type"] == "event_msg" and payload.get("type") == "token_count":
                info = payload.get("info")
                if not info:
                    continue
                total = info["total_token_usage"]
                if parent and skipping and line["timestamp"][:19] == replay_second:
                    previous = total
                    continue
                skipping = False
                delta = {k: total[k] - (previous or {}).get(k, 0) for k in total}
                previous = total
                if not any(delta[k] for k in ("input_tokens", "output_tokens")):
                    continue
                row = out[(parent or session, model)]
                row["input_tokens"] += delta["input_tokens"] - delta["cached_input_tokens"]
                row["cache_read_tokens"] += delta["cached_input_tokens"]
                row["output_tokens"] += delta["output_tokens"]
                row["reasoning_tokens"] += delta["reasoning_output_tokens"]
                row["requests"] += 1
    return dict(out)
