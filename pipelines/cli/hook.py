"""`tally hook claude-code`: a Claude Code hook command that reports each tool call to the
API as the agent makes it, on machines whose transcripts tally does not read.

A hook must never stand in the agent's way: whatever goes wrong (no key, the API down or
slow, input it cannot read) is said in one line on stderr (and in `--log`) and the command
exits 0. Claude Code reads exit 2 of a PreToolUse hook as "block this tool call"."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import orjson
import typer

app = typer.Typer(help="Hook commands for agents: report tool calls to the API as they happen.")

DEFAULT_API_URL = "http://127.0.0.1:8000"
ANSWER_CHARS = 300  # of an error answer, in the one line the hook writes


def _say(message: str, log: Path | None) -> None:
    line = f"tally hook: {message}"
    print(line, file=sys.stderr)
    if log is not None:
        try:
            with log.open("a", encoding="utf-8") as handle:
                handle.write(f"{datetime.now(UTC).isoformat()} {line}\n")
        except OSError:
            pass


def _post(url: str, key: str, record: dict[str, object], timeout: float) -> str | None:
    """Post one record; None when it was stored (or was already), else what went wrong."""
    request = urllib.request.Request(
        f"{url.rstrip('/')}/v1/tool-calls",
        data=orjson.dumps({"records": [record]}),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = orjson.loads(response.read())
    except urllib.error.HTTPError as refused:
        body = refused.read().decode("utf-8", "replace")[:ANSWER_CHARS]
        return f"the API answered {refused.code}: {body}"
    except (urllib.error.URLError, TimeoutError, OSError) as failed:
        reason = getattr(failed, "reason", failed)
        return f"cannot reach the API at {url}: {reason}"
    except orjson.JSONDecodeError:
        return f"the API at {url} did not answer JSON"
    result = answer.get("results", [{}])[0] if isinstance(answer, dict) else {}
    if result.get("status") == "rejected":
        return f"call {record['call_id']} rejected: {result.get('reason')}"
    return None


@app.command("claude-code")
def claude_code(
    api_url: str = typer.Option(
        DEFAULT_API_URL, "--api-url", envvar="TALLY_API_URL", help="Where `tally serve` answers."
    ),
    key: str | None = typer.Option(
        None, "--key", envvar="TALLY_API_KEY", help="An agent or service key (`tally keys create`)."
    ),
    timeout: float = typer.Option(
        2.0, "--timeout", min=0.1, max=60, help="Seconds to wait for the API."
    ),
    log: Path | None = typer.Option(None, "--log", help="Also append problems to this file."),
) -> None:
    """Read a PreToolUse, PostToolUse or PostToolUseFailure hook's input on stdin and post the
    half of the tool call it saw; other events are ignored. Always exits 0."""
    from ingestion.adapters.claude_code_hooks import tool_call_half
    from ingestion.adapters.common import InvalidRecord

    raw = sys.stdin.buffer.read()
    try:
        record = tool_call_half(orjson.loads(raw), datetime.now(UTC))
    except orjson.JSONDecodeError as error:
        _say(f"the hook input is not JSON ({error}): {raw[:80]!r}", log)
        return
    except InvalidRecord as error:
        _say(str(error), log)
        return
    if record is None:
        return
    if not key:
        _say("no key: set TALLY_API_KEY (or --key) to an agent or service key", log)
        return
    problem = _post(api_url, key, record, timeout)
    if problem:
        _say(problem, log)
