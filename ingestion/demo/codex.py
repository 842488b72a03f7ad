"""Synthetic Codex CLI rollouts with the traps of `reference/agent-logs.md` §2: cumulative
`total_token_usage` with every usage event written twice, rate-limit-only events
(`info: null`), the model from `turn_context` (switching mid-session), cached input inside
input and reasoning inside output, local-time file names, and subagent rollouts that replay
their parent's history before their own work. Compact JSON."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ingestion.demo.text import SessionWriter, stamp

SOURCE = "codex"
MODELS = ("gpt-5-codex", "gpt-5.1-codex-max", "gpt-5.2-codex")
LOCAL_OFFSETS = (0, -6, 1, 9)  # hours: file names use the machine's local time


def line(at: datetime, kind: str, payload: dict[str, Any]) -> bytes:
    return orjson.dumps({"timestamp": stamp(at), "type": kind, "payload": payload}) + b"\n"


class CodexSessionWriter(SessionWriter):
    def write_session(self, start: datetime) -> int:
        session_id = self._uuid()
        written, history = self._rollout(start, session_id, parent=None, replay=[])
        if self.rng.random() < 0.25:
            child_start = start + timedelta(minutes=self.rng.randint(1, 20))
            written += self._rollout(child_start, self._uuid(), parent=session_id, replay=history)[
                0
            ]
        return written

    def _path(self, start: datetime, session_id: str) -> Path:
        local = start + timedelta(hours=self.rng.choice(LOCAL_OFFSETS))
        folder = self.root / f"{local:%Y}" / f"{local:%m}" / f"{local:%d}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"rollout-{local:%Y-%m-%dT%H-%M-%S}-{session_id}.jsonl"

    def _rollout(
        self, start: datetime, session_id: str, parent: str | None, replay: list[dict[str, Any]]
    ) -> tuple[int, list[dict[str, Any]]]:
        rng = self.rng
        at = start
        source: Any = "cli"
        if parent:
            source = {"subagent": {"thread_spawn": {"parent_thread_id": parent, "depth": 1}}}
        lines = [
            line(
                at,
                "session_meta",
                {
                    "id": session_id,
                    "timestamp": stamp(at),
                    "cwd": "/home/dev/src/agent-tools",
                    "originator": "codex_cli_rs",
                    "cli_version": "0.59.0",
                    "instructions": "",
                    "source": source,
                    "model_provider": "openai",
                    "git": {
                        "commit_hash": f"{rng.getrandbits(160):040x}",
                        "branch": "main",
                        "repository_url": "git@example.com:dev/agent-tools.git",
                    },
                },
            )
        ]
        totals = [0, 0, 0, 0, 0]  # input, cached, output, reasoning, total
        for event in replay:  # the parent's history, replayed within one second
            lines.append(line(at, "event_msg", event))
            totals = list(event["info"]["total_token_usage"].values())
        model = rng.choice(MODELS)
        history: list[dict[str, Any]] = []
        for _ in range(rng.randint(2, 8)):
            at += timedelta(seconds=rng.uniform(5, 300))
            if rng.random() < 0.15:
                model = rng.choice(MODELS)
            lines.append(
                line(
                    at,
                    "turn_context",
                    {
                        "cwd": "/home/dev/src/agent-tools",
                        "approval_policy": "on-request",
                        "sandbox_policy": {"mode": "workspace-write"},
                        "model": model,
                        "effort": "medium",
                        "summary": "auto",
                    },
                )
            )
            lines.append(
                line(
                    at,
                    "response_item",
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": self.pool.take(150)}],
                    },
                )
            )
            for _ in range(rng.randint(1, 4)):
                at += timedelta(seconds=rng.uniform(1, 40))
                lines.append(
                    line(
                        at,
                        "response_item",
                        {
                            "type": "reasoning",
                            "summary": [{"type": "summary_text", "text": self.pool.take(80)}],
                            "encrypted_content": self.pool.take(400),
                        },
                    )
                )
                self._tool_call(lines, at)
                fresh, cached = rng.randint(500, 8_000), rng.randint(5_000, 60_000)
                reasoning = rng.randint(0, 1_500)
                output = reasoning + rng.randint(20, 1_500)
                turn = [fresh + cached, cached, output, reasoning, fresh + cached + output]
                totals = [a + b for a, b in zip(totals, turn, strict=True)]
                info = {
                    "total_token_usage": dict(
                        zip(
                            (
                                "input_tokens",
                                "cached_input_tokens",
                                "output_tokens",
                                "reasoning_output_tokens",
                                "total_tokens",
                            ),
                            totals,
                            strict=True,
                        )
                    ),
                    "last_token_usage": dict(
                        zip(
                            (
                                "input_tokens",
                                "cached_input_tokens",
                                "output_tokens",
                                "reasoning_output_tokens",
                                "total_tokens",
                            ),
                            turn,
                            strict=True,
                        )
                    ),
                    "model_context_window": 272_000,
                }
                event = {
                    "type": "token_count",
                    "info": info,
                    "rate_limits": {"primary": {"used_percent": 12.0, "window_minutes": 300}},
                }
                lines.append(line(at, "event_msg", event))
                # Codex 0.58-0.60 writes every usage event twice, moments apart
                lines.append(
                    line(at + timedelta(milliseconds=rng.randint(5, 400)), "event_msg", event)
                )
                history.extend((event, event))  # replayed verbatim, doubling included
                self.truth.request(
                    SOURCE,
                    parent or session_id,
                    model,
                    input_tokens=fresh,
                    cache_read_tokens=cached,
                    output_tokens=output,
                    reasoning_tokens=reasoning,
                )
                if rng.random() < 0.3:
                    lines.append(
                        line(
                            at,
                            "event_msg",
                            {
                                "type": "token_count",
                                "info": None,
                                "rate_limits": {"primary": {"used_percent": 13.0}},
                            },
                        )
                    )
            lines.append(
                line(
                    at,
                    "response_item",
                    {
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": self.pool.take(300)}],
                    },
                )
            )
        path = self._path(start, session_id)
        data = b"".join(lines)
        path.write_bytes(data)
        self.truth.files += 1
        self.truth.bytes += len(data)
        return len(data), history

    def _tool_call(self, lines: list[bytes], at: datetime) -> None:
        rng = self.rng
        call_id = f"call_{rng.getrandbits(96):024x}"
        if rng.random() < 0.3:
            patch = "*** Begin Patch\n*** Update File: src/cost.py\n@@\n-a\n+b\n*** End Patch"
            lines.append(
                line(
                    at,
                    "response_item",
                    {
                        "type": "custom_tool_call",
                        "status": "completed",
                        "call_id": call_id,
                        "name": "apply_patch",
                        "input": patch,
                    },
                )
            )
            lines.append(
                line(
                    at + timedelta(seconds=1),
                    "response_item",
                    {
                        "type": "custom_tool_call_output",
                        "call_id": call_id,
                        "output": orjson.dumps(
                            {"output": "Success. Updated src/cost.py", "metadata": {"exit_code": 0}}
                        ).decode(),
                    },
                )
            )
        else:
            commit = rng.random() < 0.15
            command = ["bash", "-lc", "git commit -am 'wip #12'" if commit else "pytest -q"]
            output = (
                f"[main {rng.getrandbits(28):07x}] wip #12\n 1 file changed"
                if commit
                else self.pool.take(rng.randint(50, 4_000))
            )
            exit_code = 0 if rng.random() > 0.1 else 1
            lines.append(
                line(
                    at,
                    "response_item",
                    {
                        "type": "function_call",
                        "name": "shell",
                        "call_id": call_id,
                        "arguments": orjson.dumps(
                            {"command": command, "workdir": "/home/dev"}
                        ).decode(),
                    },
                )
            )
            lines.append(
                line(
                    at + timedelta(seconds=rng.uniform(0.1, 20)),
                    "response_item",
                    {
                        "type": "function_call_output",
                        "call_id": call_id,
                        "output": orjson.dumps(
                            {
                                "output": output,
                                "metadata": {"exit_code": exit_code, "duration_seconds": 1.2},
                            }
                        ).decode(),
                    },
                )
            )
        self.truth.tool_calls += 1
