"""Synthetic Claude Code transcripts with every trap of `reference/agent-logs.md` §1:
usage repeated on every content-block line with placeholder output counts, `<synthetic>`
lines, `/btw` sidechain replays, inline sidechains (1.0.x), subagent files plus their
`agent_progress` copies (2.1.x), 5m-only / 1h-only / unsplit cache writes, `costUSD` on old
builds, Task summaries that must not be counted, summary and snapshot lines. Compact JSON.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ingestion.demo.text import SessionWriter, stamp

SOURCE = "claude_code"


@dataclass(frozen=True)
class Profile:
    version: str
    models: tuple[str, ...]
    cache_split: str  # "1h", "5m" or "none"
    subagents: str  # "files" (2.1.x) or "inline" (1.0.x)
    placeholder_output: bool
    reports_cost: bool


PROFILES = {
    "2.1": Profile(
        "2.1.14",
        ("claude-opus-4-6", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"),
        "1h",
        "files",
        True,
        False,
    ),
    "1.0-late": Profile(
        "1.0.98",
        ("claude-sonnet-4-20250514", "claude-opus-4-1-20250805"),
        "5m",
        "inline",
        True,
        False,
    ),
    "1.0-early": Profile(
        "1.0.30",
        ("claude-sonnet-4-20250514", "claude-3-5-haiku-20241022"),
        "none",
        "inline",
        False,
        False,
    ),
    "0.2": Profile("0.2.125", ("claude-3-7-sonnet-20250219",), "none", "inline", False, True),
}
PROFILE_WEIGHTS = {"2.1": 5, "1.0-late": 2, "1.0-early": 2, "0.2": 1}
PROJECTS = ("billing-api", "web.app", "agent-tools", "data_pipeline", "docs")
TOOLS = ("Bash", "Read", "Edit", "Write", "Grep", "mcp__pigeon__getBoard", "mcp__github__get_pr")


def dumps(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj) + b"\n"


class ClaudeSessionWriter(SessionWriter):
    def _hex(self, n: int) -> str:
        return f"{self.rng.getrandbits(n * 4):0{n}x}"

    def write_session(self, start: datetime, profile_name: str | None = None) -> int:
        rng = self.rng
        if profile_name is None:
            names = list(PROFILE_WEIGHTS)
            profile_name = rng.choices(names, weights=[PROFILE_WEIGHTS[n] for n in names])[0]
        profile = PROFILES[profile_name]
        project = rng.choice(PROJECTS)
        cwd = f"/home/dev/src/{project}"
        project_dir = "-" + cwd.strip("/").replace("/", "-").replace(".", "-").replace("_", "-")
        session_id = self._uuid()
        self.session_id = session_id
        self.profile = profile
        self.base = {
            "cwd": cwd,
            "sessionId": session_id,
            "version": profile.version,
            "gitBranch": rng.choice(("main", "feature/costs", "fix/parser")),
            "userType": "external",
        }
        self.model = rng.choice(profile.models)
        self.context_tokens = rng.randint(8_000, 20_000)
        self.at = start
        self.parent_uuid: str | None = None
        lines: list[bytes] = []
        self.subagent_files: dict[str, list[bytes]] = {}
        if rng.random() < 0.3:
            lines.append(
                dumps({"type": "summary", "summary": self.pool.take(40), "leafUuid": self._uuid()})
            )
        for _ in range(rng.randint(2, 7)):
            self._turn(lines)
        path = self.root / project_dir / f"{session_id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        written = _write(path, lines)
        for agent_id, agent_lines in self.subagent_files.items():
            agent_path = (
                self.root / project_dir / session_id / "subagents" / f"agent-{agent_id}.jsonl"
            )
            agent_path.parent.mkdir(parents=True, exist_ok=True)
            written += _write(agent_path, agent_lines)
            self.truth.files += 1
        self.truth.files += 1
        self.truth.bytes += written
        return written

    # -- lines ------------------------------------------------------------------------------
    def _line(
        self,
        kind: str,
        extra: dict[str, Any],
        *,
        sidechain: bool = False,
        agent_id: str | None = None,
    ) -> dict[str, Any]:
        line_uuid = self._uuid()
        obj = {
            "parentUuid": self.parent_uuid,
            "isSidechain": sidechain,
            **self.base,
            "type": kind,
            **extra,
            "uuid": line_uuid,
            "timestamp": stamp(self.at),
        }
        if agent_id:
            obj["agentId"] = agent_id
        self.parent_uuid = line_uuid
        return obj

    def _tick(self, low: float = 0.5, high: float = 20.0) -> None:
        self.at += timedelta(seconds=self.rng.uniform(low, high))

    def _turn(self, lines: list[bytes]) -> None:
        rng = self.rng
        self._tick(5, 600)
        lines.append(
            dumps(self._line("user", {"message": {"role": "user", "content": self.pool.take(120)}}))
        )
        if rng.random() < 0.15:
            lines.append(
                dumps(
                    {
                        "type": "file-history-snapshot",
                        "messageId": self._uuid(),
                        "snapshot": {"trackedFileBackups": {}, "timestamp": stamp(self.at)},
                        "isSnapshotUpdate": False,
                    }
                )
            )
        for _ in range(rng.randint(1, 5)):
            tool_uses = self._request(lines, sidechain=False)
            if not tool_uses:
                break
            for tool_id, name, tool_input in tool_uses:
                self._tick(0.2, 30)
                if name == "Task":
                    self._subagent(lines, tool_id)
                self._tool_result(lines, tool_id, name, tool_input)
        if rng.random() < 0.05:
            self._synthetic(lines)
        if rng.random() < 0.1:
            lines.append(
                dumps(
                    self._line(
                        "system",
                        {
                            "subtype": "informational",
                            "content": "hook ok",
                            "level": "info",
                            "isMeta": False,
                        },
                    )
                )
            )

    def _usage(self, final_output: int, placeholder: bool) -> tuple[dict[str, Any], dict[str, int]]:
        rng = self.rng
        fresh = rng.randint(1, 60)
        cache_read = self.context_tokens
        cache_write = rng.randint(200, 6_000)
        if rng.random() < 0.02:  # a long-context request
            cache_read = rng.randint(195_000, 240_000)
        self.context_tokens += cache_write // 2
        usage: dict[str, Any] = {
            "input_tokens": fresh,
            "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read,
            "output_tokens": 1 if placeholder else final_output,
            "service_tier": "standard",
        }
        split = self.profile.cache_split
        write_5m = cache_write if split in ("5m", "none") else 0
        write_1h = cache_write if split == "1h" else 0
        if split != "none":
            usage["cache_creation"] = {
                "ephemeral_5m_input_tokens": write_5m,
                "ephemeral_1h_input_tokens": write_1h,
            }
        if rng.random() < 0.03:
            usage["server_tool_use"] = {
                "web_search_requests": rng.randint(1, 3),
                "web_fetch_requests": 0,
            }
        truth = {
            "input_tokens": fresh,
            "output_tokens": final_output,
            "cache_read_tokens": cache_read,
            "cache_write_5m_tokens": write_5m,
            "cache_write_1h_tokens": write_1h,
        }
        return usage, truth

    def _request(
        self,
        lines: list[bytes],
        *,
        sidechain: bool,
        agent_id: str | None = None,
        out: list[bytes] | None = None,
        progress_parent: str | None = None,
        session_for_truth: str | None = None,
    ) -> list[tuple[str, str, dict[str, Any]]]:
        rng = self.rng
        target = out if out is not None else lines
        message_id = f"msg_01{self._hex(22)}"
        request_id = f"req_011C{self._hex(20)}"
        blocks: list[dict[str, Any]] = []
        if rng.random() < 0.4:
            blocks.append(
                {"type": "thinking", "thinking": self.pool.take(300), "signature": self._hex(40)}
            )
        blocks.append({"type": "text", "text": self.pool.take(rng.randint(40, 600))})
        tool_uses = []
        for _ in range(rng.choices((0, 1, 2), weights=(3, 5, 2))[0]):
            name = rng.choice(TOOLS)
            if progress_parent is None and not sidechain and rng.random() < 0.12:
                name = "Task"
            tool_input = self._tool_input(name)
            tool_id = f"toolu_01{self._hex(22)}"
            blocks.append(
                {
                    "type": "tool_use",
                    "id": tool_id,
                    "name": name,
                    "input": tool_input,
                    "caller": {"type": "direct"},
                }
            )
            tool_uses.append((tool_id, name, tool_input))
        final_output = rng.randint(20, 2_500)
        model = self.model if not sidechain else rng.choice(self.profile.models)
        copies = []
        for index, block in enumerate(blocks):
            last = index == len(blocks) - 1
            usage, truth = self._usage(final_output, self.profile.placeholder_output and not last)
            if index:
                usage = {**copies[0]["message"]["usage"], "output_tokens": usage["output_tokens"]}
            message = {
                "model": model,
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "content": [block],
                "stop_reason": "tool_use" if tool_uses else None,
                "stop_sequence": None,
                "usage": usage,
            }
            obj = self._line(
                "assistant",
                {"message": message, "requestId": request_id},
                sidechain=sidechain,
                agent_id=agent_id,
            )
            if self.profile.reports_cost:
                obj["costUSD"] = round(rng.uniform(0.0001, 0.05), 6)
            if index == 0:
                first_truth = truth
            copies.append(obj)
            target.append(dumps(obj))
            if progress_parent is not None and (last or rng.random() < 0.5):
                self._progress_copy(lines, obj, agent_id or "", progress_parent)
            self._tick(0.05, 2)
        usage0 = copies[0]["message"]["usage"]
        truth_row = {
            **first_truth,
            "output_tokens": final_output,
            "cache_read_tokens": usage0["cache_read_input_tokens"],
            "input_tokens": usage0["input_tokens"],
        }
        self.truth.request(SOURCE, session_for_truth or self.session_id, model, **truth_row)
        if not sidechain and progress_parent is None and rng.random() < 0.03:
            replay = dict(copies[-1])  # a /btw replay: same message, other request, sidechain
            replay["requestId"] = f"req_011C{self._hex(20)}"
            replay["isSidechain"] = True
            replay["uuid"] = self._uuid()
            lines.append(dumps(replay))
        self.truth.tool_calls += len(tool_uses)
        return tool_uses

    def _tool_input(self, name: str) -> dict[str, Any]:
        rng = self.rng
        if name == "Bash":
            if rng.random() < 0.25:
                return {
                    "command": f"git commit -am 'Fix parser (#{rng.randint(1, 90)})'",
                    "description": "commit",
                }
            return {"command": "pytest -q", "description": "run tests"}
        if name in ("Edit", "Write", "Read"):
            return {
                "file_path": f"/home/dev/src/app/module_{rng.randint(1, 40)}.py",
                "old_string": "a",
                "new_string": "b",
            }
        if name == "Task":
            return {
                "description": "explore",
                "prompt": self.pool.take(200),
                "subagent_type": "general-purpose",
            }
        return {"query": self.pool.take(30)}

    def _tool_result(
        self, lines: list[bytes], tool_id: str, name: str, tool_input: dict[str, Any]
    ) -> None:
        rng = self.rng
        is_error = rng.random() < 0.06
        structured: Any
        if name == "Bash" and "git commit" in str(tool_input.get("command")):
            commit = self._hex(7)
            text = f"[main {commit}] Fix parser\n 2 files changed, 10 insertions(+)"
            self.truth.commits.add(commit)
            structured = {"stdout": text, "stderr": "", "interrupted": False}
        else:
            text = self.pool.take(int(rng.lognormvariate(7.5, 1.3)))
            structured = {"stdout": text, "stderr": ""} if name == "Bash" else {"type": "text"}
        if name == "Task":
            structured = {
                "totalDurationMs": 42_000,
                "totalTokens": 123_456,
                "totalToolUseCount": 7,
                "usage": {
                    "input_tokens": 99,
                    "output_tokens": 999,
                    "cache_read_input_tokens": 99_999,
                },
            }
        # Claude Code before 2.1.132 could cut an emoji in two when it truncated a tool's
        # error, leaving half a surrogate pair that JSON.stringify writes as a lone escape.
        # The escape takes the place of six plain characters and no random draw decides it,
        # so every corpus keeps its size and the rest of its content.
        tail = text[-_LONE_SURROGATE_ESCAPE_BYTES:]
        split_emoji = (
            is_error
            and zlib.crc32(tool_id.encode()) % 5 == 0
            and len(tail) == _LONE_SURROGATE_ESCAPE_BYTES
            and tail.isascii() and tail.isprintable() and '"' not in tail and "\\" not in tail
        )  # fmt: skip
        if split_emoji:
            text = text[:-_LONE_SURROGATE_ESCAPE_BYTES] + _LONE_SURROGATE_MARK
        content = [
            {"tool_use_id": tool_id, "type": "tool_result", "content": text, "is_error": is_error}
        ]
        obj = self._line(
            "user", {"message": {"role": "user", "content": content}, "toolUseResult": structured}
        )
        line = dumps(obj)
        if split_emoji:
            line = line.replace(_LONE_SURROGATE_MARK.encode(), b"\\ud83d")
        lines.append(line)

    def _subagent(self, lines: list[bytes], task_tool_id: str) -> None:
        rng = self.rng
        saved_parent = self.parent_uuid
        if self.profile.subagents == "inline":
            self.parent_uuid = None
            for _ in range(rng.randint(1, 4)):
                self._request(lines, sidechain=True)
                self._tick(0.5, 5)
        else:
            agent_id = self._hex(8)
            agent_lines: list[bytes] = []
            self.parent_uuid = None
            for _ in range(rng.randint(1, 4)):
                self._request(
                    lines,
                    sidechain=True,
                    agent_id=agent_id,
                    out=agent_lines,
                    progress_parent=task_tool_id,
                )
                self._tick(0.5, 5)
            self.subagent_files[agent_id] = agent_lines
        self.parent_uuid = saved_parent

    def _progress_copy(
        self, lines: list[bytes], nested: dict[str, Any], agent_id: str, task_tool_id: str
    ) -> None:
        obj = {
            "parentUuid": self.parent_uuid,
            "isSidechain": False,
            **self.base,
            "type": "progress",
            "data": {
                "type": "agent_progress",
                "message": nested,
                "agentId": agent_id,
                "prompt": "",
            },
            "toolUseID": f"agent_msg_{self._hex(12)}",
            "parentToolUseID": task_tool_id,
            "uuid": self._uuid(),
            "timestamp": stamp(self.at),
        }
        lines.append(dumps(obj))

    def _synthetic(self, lines: list[bytes]) -> None:
        message = {
            "id": self._uuid(),
            "model": "<synthetic>",
            "role": "assistant",
            "type": "message",
            "stop_reason": "stop_sequence",
            "stop_sequence": "",
            "content": [{"type": "text", "text": "API Error: 529 overloaded"}],
            "usage": {
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }
        obj = self._line("assistant", {"message": message, "isApiErrorMessage": True})
        lines.append(dumps(obj))


# stands for the lone escape until the line is encoded (orjson cannot encode a lone half)
_LONE_SURROGATE_MARK = "\u27e6lone-surrogate\u27e7"
_LONE_SURROGATE_ESCAPE_BYTES = len(b"\\ud83d")


def _write(path: Path, lines: list[bytes]) -> int:
    data = b"".join(lines)
    with open(path, "ab") as handle:
        handle.write(data)
    return len(data)
