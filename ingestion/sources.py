"""The file sources tally reads, by name, and the one directory walk they share."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ingestion.adapters import claude_code, codex, mcp_tool_calls
from ingestion.batch import Batch

if TYPE_CHECKING:
    from ingestion.settings import TallySettings


class LineParser(Protocol):
    def handle_line(self, offset: int, line: bytes, batch: Batch) -> int: ...

    def state(self) -> dict[str, Any]: ...


@dataclass
class Listing:
    files: list[tuple[str, os.stat_result]]  # in path order
    # `*.jsonl` entries that could not be told to be files, with the reason (a symlink
    # loop, a link into a directory tally may not read): each becomes a reject
    unreadable: dict[str, str] = field(default_factory=dict)
    # directories that could not be listed: what they hold is unknown, not gone
    unlisted: list[str] = field(default_factory=list)

    def gone(self, known: Iterable[str], root: Path) -> list[str]:
        """Of the `known` paths (files read before), those under `root` this listing no
        longer finds, outside the directories it could not list."""
        found = {path for path, _ in self.files} | self.unreadable.keys()
        unknown = tuple(directory + os.sep for directory in self.unlisted)
        prefix = str(root) + os.sep
        return [
            path for path in known
            if path.startswith(prefix) and path not in found and not path.startswith(unknown)
        ]  # fmt: skip


def walk_jsonl(root: Path) -> Listing:
    """Every `*.jsonl` file under root with its stat: one stat per file. Paths stay strings:
    a no-change run over tens of thousands of files should not pay for as many Path
    objects. Links are followed to files, not into directories. A FIFO or a directory named
    `*.jsonl` is not a log and is passed over; an entry whose kind cannot be told is listed
    as unreadable, where it once ended the run (a symlink loop, `Too many levels of symbolic
    links`) before any file was read."""
    listing = Listing([])
    pending = [str(root)]
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            continue  # deleted since its parent was read: gone with what it held
        except OSError:
            listing.unlisted.append(directory)
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
            elif entry.name.endswith(".jsonl"):
                try:
                    if entry.is_file():
                        listing.files.append((entry.path, entry.stat()))
                except FileNotFoundError:
                    continue  # deleted since the directory was read
                except OSError as error:
                    listing.unreadable[entry.path] = f"cannot open: {error.strerror or error}"
    listing.files.sort(key=lambda item: item[0])
    return listing


@dataclass(frozen=True)
class FileSource:
    name: str  # stored in the `source` columns
    label: str  # as typed on the command line
    parser: Callable[[Path, Path, dict[str, Any]], LineParser]
    # The session tree each file belongs to. Files of one tree load in one lane: a subagent's
    # batch creates its parent's session row, and doing that while the other lane's open
    # transaction holds the same row would make one lane wait for the other.
    session_trees: Callable[[list[Path]], list[str]] = lambda paths: [str(p) for p in paths]


CLAUDE_CODE = FileSource(
    name=claude_code.SOURCE,
    label="claude-code",
    parser=lambda path, root, state: claude_code.ClaudeTranscriptParser(
        claude_code.FileContext(path, root)
    ),
    session_trees=claude_code.session_trees,
)
CODEX = FileSource(
    name=codex.SOURCE,
    label="codex",
    parser=lambda path, root, state: codex.CodexRolloutParser(path, state),
    session_trees=codex.session_trees,
)
MCP_TOOL_CALLS = FileSource(
    name=mcp_tool_calls.SOURCE,
    label="tool-calls",
    parser=lambda path, root, state: mcp_tool_calls.McpToolCallParser(path),
)
FILE_SOURCES = {source.label: source for source in (CLAUDE_CODE, CODEX, MCP_TOOL_CALLS)}
CODEX_ARCHIVE = "archived_sessions"


# The directory of logs inside each tool's home (~/.claude or a CLAUDE_CONFIG_DIR root;
# ~/.codex or CODEX_HOME), which is easily given in its place.
LOG_SUBDIRECTORY = {CLAUDE_CODE.name: "projects", CODEX.name: "sessions"}


def logs_within(source: FileSource, root: Path) -> Path:
    """The directory of logs, given it or the tool's home that holds it. Read from the home,
    a transcript's project directory would be taken for its session (the session is named
    by its place under `projects`), so the home is never read as such."""
    subdirectory = LOG_SUBDIRECTORY.get(source.name)
    if subdirectory and root.name != subdirectory and (root / subdirectory).is_dir():
        return root / subdirectory
    return root


def log_directories(source: FileSource, settings: TallySettings) -> list[Path]:
    """The directories a source's logs are read from when no path is given."""
    if source is CLAUDE_CODE:
        return [logs_within(source, directory) for directory in settings.claude_dirs]
    return source_roots(source, settings.codex_dir.expanduser())


def source_roots(source: FileSource, root: Path) -> list[Path]:
    """The directories that hold a source's logs, given the one configured: for Codex also
    `archived_sessions`, beside a `sessions` directory, where Codex moves the rollout of a
    conversation the user archives. A session archived before tally read it exists only
    there; one read before and again after the move keeps its rows (natural keys), so reading
    both never double counts. The tool's home stands for its directory of logs."""
    root = logs_within(source, root)
    roots = [root]
    archive = root.parent / CODEX_ARCHIVE
    if source is CODEX and root.name == "sessions" and archive.is_dir():
        roots.append(archive)
    return roots


# `tally ingest all` reads the agents' own logs; MCP logs are read where you point.
AGENT_LOG_SOURCES = (CLAUDE_CODE, CODEX)
