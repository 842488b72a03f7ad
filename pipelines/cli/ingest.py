"""`tally ingest`: read agent logs into the canonical store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from pipelines.cli.context import CommandFailed, failures_reported, progress_console, store

if TYPE_CHECKING:
    from ingestion.correlation import CorrelationSummary
    from ingestion.runner import IngestSummary
    from ingestion.sources import FileSource
    from ingestion.workgraph.loader import LoadSummary
    from pipelines.cli.context import StoreContext

app = typer.Typer(help="Read agent logs into the canonical store.", no_args_is_help=True)
console = progress_console()

PathOption = typer.Option(None, "--path", help="Directory to read instead of the default.")
StrictOption = typer.Option(False, "--strict", help="Exit 1 when any record was rejected.")


class _ProgressListener:
    """A progress bar that appears only when there is something to read."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.started = time.monotonic()
        self.bytes = 0
        self.file_total = 0
        self.files_done = 0

    def discovered(self, files: int, total_bytes: int) -> None:
        if not files:
            return
        self.progress = _progress()
        self.progress.start()
        self.task = self.progress.add_task(
            self.label, total=max(total_bytes, 1), files=f"0/{files}", rate="", mb="0.0"
        )
        self.file_total = files

    def advanced(self, files: int, bytes_read: int, events: int) -> None:
        if self.progress is None or self.task is None:
            return
        self.files_done += files
        self.bytes += bytes_read
        elapsed = max(time.monotonic() - self.started, 1e-6)
        fields = {"files": f"{self.files_done}/{self.file_total}", "mb": f"{self.bytes / 1e6:.1f}"}
        if events:
            fields["rate"] = f"{events / elapsed:,.0f} events/s"
        self.progress.update(self.task, advance=bytes_read, **fields)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[files]} files"),
        TextColumn("{task.fields[mb]} MB"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def run_source(
    source: FileSource, path: Path | None, context: StoreContext | None = None
) -> list[IngestSummary]:
    """One summary per directory read: the path given, else every configured directory of
    the source (Claude Code's candidates, Codex's sessions and the archive beside them).
    A caller that already set the store up passes its context (one schema check per run)."""
    from ingestion.sources import log_directories, source_roots

    context = context or store()
    if path is not None and path.expanduser().is_file():
        roots = [path.expanduser()]
    elif path is not None:
        roots = source_roots(source, path.expanduser())
    else:
        roots = log_directories(source, context.settings)
    # the first directory is the source's own row; any other is named by its last two parts
    wheres = [None, *("/".join(root.parts[-2:]) for root in roots[1:])]
    # a root may be one log file (given or configured): IngestRun reads it alone
    return [_run_root(context, source, r, w) for r, w in zip(roots, wheres, strict=True)]


def _run_root(
    context: StoreContext, source: FileSource, root: Path, where: str | None
) -> IngestSummary:
    from ingestion.runner import IngestRun, SourceDirectoryMissing

    # the label is shown through rich markup: a directory's name is not markup
    listener = _ProgressListener(escape(f"{source.label} ({where})") if where else source.label)
    run = IngestRun.from_settings(
        context.conninfo, source, root, context.settings, listener=listener
    )
    try:
        summary = run.run()
    except SourceDirectoryMissing as error:
        raise CommandFailed(str(error)) from None
    finally:
        listener.close()
    if where:
        summary.source = f"{summary.source} ({where})"
    return summary


def print_summary(summaries: list[IngestSummary], elapsed: float) -> None:
    table = Table(title=f"ingest finished in {elapsed:.2f} s")
    for column in (
        "source",
        "files read",
        "unchanged",
        "MB",
        "new events",
        "duplicates merged",
        "new tool calls",
        "rejects",
    ):
        if column == "source":  # folded, never cut: two directories of a source differ at the end
            table.add_column(column, overflow="fold")
        else:
            table.add_column(column, justify="right")
    for s in summaries:
        table.add_row(
            escape(s.source),
            f"{s.files_read:,}",
            f"{s.files_unchanged:,}",
            f"{s.bytes_read / 1e6:,.1f}",
            f"{s.events_new:,}",
            f"{s.events_merged:,}",
            f"{s.tool_calls_new:,}",
            f"[red]{s.rejects:,}[/]" if s.rejects else "0",
        )
    console.print(table)
    busy = sum(s.files_busy for s in summaries)
    if busy:
        console.print(
            f"{busy} file(s) skipped: another ingest still held them after waiting "
            "(the next run reads them)"
        )
    runs = [s.run_id for s in summaries if s.rejects and s.run_id]
    if runs:
        commands = " and ".join(f"[bold]tally rejects --run {run}[/]" for run in runs)
        console.print(f"see the rejected records with {commands}")
    if summaries and not any(s.files_seen for s in summaries):
        # most likely the wrong directory: say so rather than leave a table of zeros
        where = " or ".join(s.root for s in summaries)
        console.print(
            f"[yellow]warning:[/] no log files (*.jsonl) under {escape(where)}", soft_wrap=True
        )


def _finish(summaries: list[IngestSummary], started: float, strict: bool) -> None:
    print_summary(summaries, time.monotonic() - started)
    if strict and any(s.rejects for s in summaries):
        raise typer.Exit(1)


@app.command("claude-code")
def claude_code(path: Path | None = PathOption, strict: bool = StrictOption) -> None:
    """Claude Code transcripts (a `projects` directory; default TALLY_CLAUDE_DIR)."""
    from ingestion.sources import CLAUDE_CODE

    started = time.monotonic()
    with failures_reported():
        summaries = run_source(CLAUDE_CODE, path)
    _finish(summaries, started, strict)


@app.command()
def codex(path: Path | None = PathOption, strict: bool = StrictOption) -> None:
    """Codex rollouts (a `sessions` directory, and `archived_sessions` beside it; default
    TALLY_CODEX_DIR)."""
    from ingestion.sources import CODEX

    started = time.monotonic()
    with failures_reported():
        summaries = run_source(CODEX, path)
    _finish(summaries, started, strict)


@app.command("all")
def all_sources(strict: bool = StrictOption) -> None:
    """Every configured source whose directory exists; then what was written over the API
    is correlated too."""
    from ingestion.correlation import correlate_after_log_ingest

    started = time.monotonic()
    with failures_reported():
        context = store()
        summaries = ingest_agent_logs(context)
        linked = correlate_after_log_ingest(context.conninfo, context.settings.company,
                                            sum(s.files_read for s in summaries))  # fmt: skip
    _finish(summaries, started, strict)
    if linked.total:
        links = f"{linked.total:,} new link{'' if linked.total == 1 else 's'}"
        console.print(f"correlation: {links} of sessions and runs written over the API or by "
                      "upstream ingests")  # fmt: skip


def ingest_agent_logs(context: StoreContext) -> list[IngestSummary]:
    """Every agent-log source whose directory exists, as `tally ingest all` reads them."""
    from ingestion.sources import AGENT_LOG_SOURCES, log_directories

    summaries = []
    for source in AGENT_LOG_SOURCES:
        roots = log_directories(source, context.settings)
        if not roots[0].exists():
            console.print(f"{source.label}: no directory at {escape(str(roots[0]))}, skipped")
            continue
        summaries.extend(run_source(source, None, context))
    return summaries


def refresh_agent_logs(context: StoreContext) -> None:
    """`tally ingest all` before a report, summed up in one line."""
    started = time.monotonic()
    summaries = ingest_agent_logs(context)
    rejects = sum(s.rejects for s in summaries)
    console.print(
        f"ingest: {sum(s.files_read for s in summaries):,} files read "
        f"({sum(s.bytes_read for s in summaries) / 1e6:,.1f} MB), "
        f"{sum(s.events_new for s in summaries):,} new events, "
        f"{sum(s.events_merged for s in summaries):,} duplicates merged, "
        + (f"[red]{rejects:,} rejects[/] (see `tally rejects`)" if rejects else "0 rejects")
        + f" ({time.monotonic() - started:.2f} s)"
    )


@app.command()
def git(
    repo: Path = typer.Option(..., "--repo", help="The repository to read."),
    project: str | None = typer.Option(
        None, "--project", help="Project (name, key or upstream id) whose issues #N refers to."
    ),
    since: str | None = typer.Option(None, "--since", help="Only commits since (git date)."),
    pattern: list[str] | None = typer.Option(
        None,
        "--pattern",
        help="Issue-reference regex with a `number` group (and optionally `key`); repeatable. "
        "Default: #N and KEY-N.",
    ),
) -> None:
    """Commits and the issues their messages reference (git_commits, issue_commit_links)."""
    import re

    from ingestion.adapters.git import DEFAULT_PATTERNS, GitError
    from ingestion.git_loader import ProjectNotFound, load_git

    for regex in pattern or ():
        try:
            if "number" not in re.compile(regex).groupindex:
                raise typer.BadParameter(f"--pattern {regex!r} needs a (?P<number>...) group")
        except re.error as error:
            raise typer.BadParameter(f"--pattern {regex!r}: {error}") from None
    started = time.monotonic()
    with failures_reported():
        context = store()
        try:
            summary = load_git(
                context.conninfo, repo, company=context.settings.company, project=project,
                since=since, patterns=tuple(pattern) if pattern else DEFAULT_PATTERNS,
            )  # fmt: skip
        except (GitError, ProjectNotFound) as error:
            raise CommandFailed(str(error)) from None
    console.print(
        f"git: {summary.commits_seen:,} commits read, {summary.commits_new:,} new; "
        f"{summary.references:,} issue references, {summary.links_new:,} new links, "
        f"{summary.unresolved:,} naming no known issue ({time.monotonic() - started:.2f} s)"
    )
    if summary.rejects:
        noun = "commit" if summary.rejects == 1 else "commits"
        console.print(f"[yellow]{summary.rejects:,} {noun} rejected[/] (see `tally rejects`)")


def _report_graph_load(label: str, summary: LoadSummary, correlation: CorrelationSummary,
                       started: float, strict: bool) -> None:  # fmt: skip
    if summary.unchanged:
        since = f" (run {summary.run_id})" if summary.run_id else ""
        console.print(
            f"{label}: unchanged since its last load{since}, nothing read "
            f"({time.monotonic() - started:.2f} s; --full reads it all again)"
        )
        return
    table = Table(title=f"{label}: {time.monotonic() - started:.2f} s", title_justify="left")
    for column in ("table", "read", "changed"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for name, seen in summary.seen.items():
        if seen:
            table.add_row(name, f"{seen:,}", f"{summary.changed.get(name, 0):,}")
    console.print(table)
    if summary.issues_gone:
        noun = "issue" if summary.issues_gone == 1 else "issues"
        console.print(f"{summary.issues_gone:,} open {noun} gone upstream: cancelled as of now")
    console.print(
        f"correlation: {correlation.projects} session-project links, {correlation.identities} "
        f"by upstream identity, {correlation.runs} run-session links, {correlation.agents} "
        f"session-agent links, {correlation.mcp_sessions} MCP sessions matched"
    )
    if summary.rejects:
        console.print(f"[yellow]{summary.rejects:,} rows rejected[/] (see `tally rejects`)")
        if strict:
            raise typer.Exit(1)


@app.command()
def pigeon(
    db: Path | None = typer.Option(None, "--db", help="Pigeon's SQLite file [TALLY_PIGEON_DB]."),
    full: bool = typer.Option(
        False, "--full", help="Read the file even if it is as it was at its last load."
    ),
    strict: bool = StrictOption,
) -> None:
    """Pigeon's board and logs: projects, cards and their moves, activity (with MCP session
    ids), git links, token usage rollups and tool-call logs."""
    from ingestion.adapters.pigeon import PigeonError
    from ingestion.workgraph.ingest import ingest_pigeon

    started = time.monotonic()
    with failures_reported():
        context = store()
        path = db or context.settings.pigeon_db
        if path is None:
            raise CommandFailed("no Pigeon database: pass --db or set TALLY_PIGEON_DB")
        try:
            summary, correlation = ingest_pigeon(context.conninfo, context.settings, path,
                                                 full=full)  # fmt: skip
        except PigeonError as error:
            raise CommandFailed(str(error)) from None
    _report_graph_load("pigeon", summary, correlation, started, strict)


@app.command()
def paperclip(
    url: str | None = typer.Option(
        None, "--url", help="Paperclip's PostgreSQL URL [TALLY_PAPERCLIP_URL]; read only."
    ),
    company: str | None = typer.Option(
        None, "--company", help="Paperclip company (id, issue prefix or name) when it has several."
    ),
    full: bool = typer.Option(
        False, "--full", help="Read the company even if its rows are as they were at its last load."
    ),
    strict: bool = StrictOption,
) -> None:
    """Paperclip's work graph and ledger: agents, goals, projects, issues and their status
    history, heartbeat runs and their events, cost and finance events, budget policies and
    incidents, approvals."""
    from ingestion.adapters.paperclip import PaperclipError
    from ingestion.settings import postgres_url
    from ingestion.workgraph.ingest import ingest_paperclip

    if url is not None:  # checked as TALLY_PAPERCLIP_URL is
        try:
            url = postgres_url(url)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--url") from None
    started = time.monotonic()
    with failures_reported():
        context = store()
        source_url = url or context.settings.paperclip_url
        if not source_url:
            raise CommandFailed("no Paperclip database: pass --url or set TALLY_PAPERCLIP_URL")
        try:
            summary, correlation = ingest_paperclip(
                context.conninfo, context.settings, source_url, company, full=full
            )
        except PaperclipError as error:
            raise CommandFailed(str(error)) from None
    _report_graph_load("paperclip", summary, correlation, started, strict)


@app.command("tool-calls")
def tool_calls(
    path: Path = typer.Option(..., "--path", help="A JSONL log file or a directory of them."),
    strict: bool = StrictOption,
) -> None:
    """MCP tool-call logs: one call per line (tool, server, session, start, duration,
    success, response size)."""
    from ingestion.sources import MCP_TOOL_CALLS

    started = time.monotonic()
    with failures_reported():
        summaries = run_source(MCP_TOOL_CALLS, path)
    _finish(summaries, started, strict)
