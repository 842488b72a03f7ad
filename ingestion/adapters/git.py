"""git history into `git_commits` and `issue_commit_links`.

Commits are read with one `git log` call (hash, author, time, message, files). Issue references
are found in messages by patterns (default `#N` and `KEY-N`); a reference becomes a link when
it names an issue of the project: `#N` its project-scoped number, `KEY-N` its identifier or,
with the project's key, its number. Re-reading the history changes nothing."""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

SOURCE = "git"
DEFAULT_PATTERNS = (
    r"(?<![\w/])#(?P<number>\d+)\b",
    r"\b(?P<key>[A-Z][A-Z0-9]{1,9})-(?P<number>\d+)\b",
)
# One record per commit: fields end with \x1f, records start with \x1e, each followed by a
# token drawn for the run (a message may hold either byte, not also the token); files follow
# the header. With -z, git ends the header and each file name with NUL and leaves names
# unquoted (without it, a name holding a tab, a newline or a quote is printed C-quoted).
LOG_FIELDS = ("%H", "%an", "%ae", "%cI", "%B")


class GitError(RuntimeError):
    pass


@dataclass
class Commit:
    hash: str
    author_name: str
    author_email: str
    committed_at: datetime
    message: str
    files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RejectedCommit:
    hash: str
    reason: str
    header: str  # the fields as git printed them, for the reject's excerpt


@dataclass
class GitHistory:
    commits: list[Commit] = field(default_factory=list)
    rejects: list[RejectedCommit] = field(default_factory=list)


@dataclass(frozen=True)
class Reference:
    text: str  # as written: "#12", "PAP-12"
    number: int
    key: str | None


def read_commits(repo: Path, since: str | None = None) -> GitHistory:
    """The commits of every ref, and those that cannot be stored with the reason: a time
    Python cannot hold (git keeps any 64-bit timestamp; `--date=@300000000000` is the year
    11476), which failed the whole command."""
    if not (repo / ".git").exists() and not repo.joinpath("HEAD").exists():
        raise GitError(f"not a git repository: {repo}")
    token = secrets.token_hex(8)
    record_start, field_end = f"\x1e{token}", f"\x1f{token}"
    log_format = record_start + "".join(f"{field}{field_end}" for field in LOG_FIELDS)
    # every ref but the stash (its commits repeat the last commit's message) and notes
    args = ["git", "-C", str(repo), "log", "--exclude=refs/stash", "--exclude=refs/notes/*",
            "--all", f"--format={log_format}", "--name-only", "--no-renames", "-z"]  # fmt: skip
    if since:
        _check_since(repo, since)
        args.append(f"--since={since}")
    result = subprocess.run(args, capture_output=True, text=True, errors="replace")
    if result.returncode != 0:
        if "does not have any commits" in result.stderr:
            return GitHistory()
        raise GitError(f"git log failed in {repo}: {result.stderr.strip()}")
    history = GitHistory()
    for record in result.stdout.split(record_start):
        if not record.strip():
            continue
        parts = record.split(field_end)
        if len(parts) < 6:
            continue
        commit_hash, name, email, when, message, files = parts[:6]
        try:
            committed_at = datetime.fromisoformat(when.strip())
        except ValueError:
            history.rejects.append(RejectedCommit(
                commit_hash.strip(),
                f"commit time {when.strip()[:40]!r} is no time tally can read (years 1 to 9999)",
                f"{commit_hash.strip()} {name} <{email}> {when.strip()} {message.strip()[:200]}",
            ))  # fmt: skip
            continue
        history.commits.append(Commit(
            hash=commit_hash.strip(), author_name=name, author_email=email,
            committed_at=committed_at, message=message.strip(), files=_file_names(files),
        ))  # fmt: skip
    return history


def _check_since(repo: Path, since: str) -> None:
    """git reads any text it cannot parse as a date (a typo, `garbage`) as now, which would
    silently select no commit: such a `since` is refused instead."""
    resolved = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", f"--since={since}"],
        capture_output=True, text=True, errors="replace",
    )  # fmt: skip
    stamp = resolved.stdout.strip().removeprefix("--max-age=")
    if resolved.returncode != 0 or not stamp.isdigit() or int(stamp) >= time.time() - 2:
        raise GitError(
            f"--since {since!r} is not a date git understands (it would read it as now); "
            "e.g. 2026-10-01 or '2 weeks ago'"
        )


def _file_names(listing: str) -> list[str]:
    """The NUL-terminated names after a header: `\\0\\n` ends the header, then `name\\0`..."""
    names = listing.removeprefix("\0").removeprefix("\n").split("\0")
    return sorted({name for name in names if name})


def references(message: str, patterns: tuple[str, ...] = DEFAULT_PATTERNS) -> list[Reference]:
    found: dict[str, Reference] = {}
    for pattern in patterns:
        for match in re.finditer(pattern, message):
            groups = match.groupdict()
            if groups.get("number") is None:
                continue
            key = groups.get("key")
            found[match.group(0)] = Reference(match.group(0), int(groups["number"]), key)
    return sorted(found.values(), key=lambda r: r.text)
