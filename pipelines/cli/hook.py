"""`tally hook claude-code`: a Claude Code hook command that posts to the API what the agent
does, on machines whose transcripts tally does not read: each tool call as it happens, and at
each stop the requests and tool calls its transcripts gained.

A hook must never stand in the agent's way: whatever goes wrong (no key, the API down or
slow, input it cannot read) is said in one line on stderr (and in `--log`) and the command
exits 0. Claude Code reads exit 2 of a PreToolUse hook as "block this tool call"."""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import typer

app = typer.Typer(help="Hook commands for agents: post their requests and tool calls to the API.")

DEFAULT_API_URL = "http://127.0.0.1:8000"
ANSWER_CHARS = 300  # of an error answer, in the one line the hook writes
BATCH = 500  # records a request, as the API's guidance asks


def _say(message: str, log: Path | None) -> None:
    line = f"tally hook: {message}"
    print(line, file=sys.stderr)
    _log(line, log)


def _log(line: str, log: Path | None) -> None:
    if log is not None:
        try:
            with log.open("a", encoding="utf-8") as handle:
                handle.write(f"{datetime.now(UTC).isoformat()} {line}\n")
        except OSError:
            pass


class Unsent(Exception):
    """The API did not answer (unreachable, too slow) or refused the request."""


def _ask(url: str, key: str, path: str, timeout: float, body: Any = None) -> Any:
    """The API's JSON answer to a GET (or, with a body, a POST); Unsent when there is none."""
    headers = {"Authorization": f"Bearer {key}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(
        f"{url.rstrip('/')}{path}",
        data=orjson.dumps(body) if body is not None else None,
        headers=headers,
        method="POST" if body is not None else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return orjson.loads(response.read())
    except urllib.error.HTTPError as refused:
        text = refused.read().decode("utf-8", "replace")[:ANSWER_CHARS]
        raise Unsent(f"the API answered {refused.code}: {text}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as failed:
        reason = getattr(failed, "reason", failed)
        raise Unsent(f"cannot reach the API at {url}: {reason}") from None
    except orjson.JSONDecodeError:
        raise Unsent(f"the API at {url} did not answer JSON") from None


def _post(url: str, key: str, path: str, records: list[dict[str, Any]], timeout: float
          ) -> list[str]:  # fmt: skip
    """Post the records, BATCH at a time; what the API rejected, one line each. Raises
    Unsent when a batch was not taken: all of it may be sent again (the API answers
    `duplicate` for what it holds)."""
    rejected = []
    for first in range(0, len(records), BATCH):
        chunk = records[first : first + BATCH]
        answer = _ask(url, key, path, timeout, {"records": chunk})
        for result in answer.get("results", []) if isinstance(answer, dict) else []:
            if result.get("status") == "rejected":
                record = chunk[result["index"]]
                name = record.get("call_id") or record.get("message_id")
                rejected.append(f"{path} {name} rejected: {result.get('reason')}")
    return rejected


def _offset_file(state_dir: Path, transcript: Path) -> Path:
    digest = hashlib.sha1(str(transcript.resolve()).encode()).hexdigest()[:20]
    return state_dir / f"{digest}.offset"


def _read_offset(offset_file: Path, size: int) -> int:
    """Where the last stop left off; 0 for a transcript not read yet, or shorter than that
    (replaced or truncated: read again, the API keeps what it holds)."""
    try:
        offset = int(offset_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
    return offset if 0 <= offset <= size else 0


def _write_offset(offset_file: Path, offset: int, transcript: Path) -> None:
    offset_file.parent.mkdir(parents=True, exist_ok=True)
    partial = offset_file.with_suffix(".partial")
    partial.write_text(f"{offset} {transcript}\n")
    partial.replace(offset_file)


def _post_transcripts(payload: dict[str, Any], url: str, key: str, timeout: float,
                      state_dir: Path) -> list[str]:  # fmt: skip
    """Post what the stop's transcripts gained since the last stop; their offsets move on
    only once the API has taken all of it (else the next stop sends it again)."""
    from ingestion.adapters.claude_code_hooks import StopRead, transcripts_of

    transcripts = transcripts_of(payload)
    if not transcripts:
        return [f"{payload.get('hook_event_name')} input has no transcript_path"]
    problems = []
    stop = StopRead()
    starts: dict[Path, int] = {}
    for transcript in transcripts:
        try:
            start = _read_offset(_offset_file(state_dir, transcript), transcript.stat().st_size)
            stop.read(transcript, start)
        except OSError as error:
            problems.append(f"cannot read the transcript {transcript}: {error.strerror}")
            continue
        starts[transcript] = start
    problems += stop.problems()
    try:
        problems += _post(url, key, "/v1/usage-events", stop.usage(), timeout)
        problems += _post(url, key, "/v1/tool-calls", stop.tool_calls(), timeout)
    except Unsent as error:
        return [*problems, f"{error} (the next stop sends these lines again)"]
    for transcript, end in stop.ends.items():
        if end != starts[transcript]:
            try:
                _write_offset(_offset_file(state_dir, transcript), end, transcript)
            except OSError as error:
                problems.append(f"cannot keep the offset in {state_dir}: {error.strerror}")
    return problems


CHECKS_BUDGETS = ("UserPromptSubmit", "PreToolUse")


def _hard_stop(url: str, key: str, timeout: float, log: Path | None) -> str | None:
    """Why the agent must stop: a policy that binds it (its own, the company's) is exceeded
    and a hard stop. Statuses that cannot be read do not stop the agent: that is said, and
    the next check asks again."""
    try:
        statuses = _ask(url, key, "/v1/budget-status", timeout)
    except Unsent as error:
        _say(f"budgets: {error}; not enforced this time", log)
        return None
    for found in statuses if isinstance(statuses, list) else []:
        if found.get("status") == "exceeded" and found.get("hard_stop"):
            return (f"tally: budget policy {found['policy_id']} is exceeded and is a hard stop: "
                    f"{_short(found['spent'])} of {_short(found['amount'])} ({found['metric']}, "
                    f"{found['window_kind']} window from {found['window_start'] or 'the start'}). "
                    "Stop here; the board must raise the budget before work goes on.")  # fmt: skip
    return None


def _short(amount: str) -> str:
    """A stored amount (`250.000000000000`) as people write it (`250`)."""
    return amount.rstrip("0").rstrip(".") if "." in amount else amount


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tally" / "claude-code-hook"


@app.command("claude-code")
def claude_code(
    api_url: str = typer.Option(
        DEFAULT_API_URL, "--api-url", envvar="TALLY_API_URL", help="Where `tally serve` answers."
    ),
    key: str | None = typer.Option(
        None, "--key", envvar="TALLY_API_KEY", help="An agent or service key (`tally keys create`)."
    ),
    timeout: float = typer.Option(
        2.0, "--timeout", min=0.1, max=60, help="Seconds to wait for each answer of the API."
    ),
    state_dir: Path | None = typer.Option(
        None,
        "--state-dir",
        help="Where each transcript's read offset is kept (default: "
        "$XDG_STATE_HOME/tally/claude-code-hook, else ~/.local/state/...).",
    ),
    enforce_budgets: bool = typer.Option(
        False,
        "--enforce-budgets",
        envvar="TALLY_ENFORCE_BUDGETS",
        help="Block the agent's next prompt and tool call (exit 2, with the reason) while a "
        "budget policy that binds it (its own, the company's) is exceeded and a hard stop.",
    ),
    log: Path | None = typer.Option(None, "--log", help="Also append problems to this file."),
) -> None:
    """Read a Claude Code hook's input on stdin and post what it tells: the half of a tool
    call a PreToolUse, PostToolUse or PostToolUseFailure hook sees; at a Stop, SubagentStop or
    SessionEnd, the requests and tool calls the session's transcripts gained since the last
    stop. With --enforce-budgets, a UserPromptSubmit or PreToolUse while a policy that binds
    the agent is exceeded and a hard stop exits 2 (Claude Code blocks it) with the reason;
    otherwise it always exits 0."""
    from ingestion.adapters.claude_code_hooks import STOPS, TOOL_EVENTS, tool_call_half
    from ingestion.adapters.common import InvalidRecord

    raw = sys.stdin.buffer.read()
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        _say(f"the hook input is not JSON ({error}): {raw[:80]!r}", log)
        return
    event = payload.get("hook_event_name") if isinstance(payload, dict) else None
    checks = enforce_budgets and event in CHECKS_BUDGETS
    if not key and (checks or event in STOPS or event in TOOL_EVENTS):
        _say("no key: set TALLY_API_KEY (or --key) to an agent or service key", log)
        return
    if checks and key:
        reason = _hard_stop(api_url, key, timeout, log)
        if reason:
            print(reason, file=sys.stderr)  # what Claude Code shows the agent, or the user
            _log(reason, log)
            raise typer.Exit(2)  # Claude Code blocks the prompt or the tool call
    try:
        record = tool_call_half(payload, datetime.now(UTC))
    except InvalidRecord as error:
        _say(str(error), log)
        return
    if key and event in STOPS:
        problems = _post_transcripts(payload, api_url, key, timeout,
                                     state_dir or default_state_dir())  # fmt: skip
    elif key and record is not None:
        try:
            problems = _post(api_url, key, "/v1/tool-calls", [record], timeout)
        except Unsent as error:
            problems = [str(error)]
    else:
        return
    for problem in problems:
        _say(problem, log)
