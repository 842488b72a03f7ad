"""Load an upstream's work graph, then correlate sessions over the whole company: new runs,
projects or MCP sessions can link sessions read long before. `ingest_paperclip` and
`ingest_pigeon` are the whole of `tally ingest paperclip|pigeon`, shared with `make run` and
the `work_graph` asset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from ingestion.correlation import CorrelationSummary, correlate
from ingestion.loader import ensure_company
from ingestion.settings import TallySettings
from ingestion.store import psycopg_conninfo
from ingestion.workgraph.loader import LoadSummary, load_work_graph, stored_run_events
from ingestion.workgraph.records import WorkGraph

GraphLoad = tuple[LoadSummary, CorrelationSummary]


def ingest_work_graph(conninfo: str, graph: WorkGraph, *, company: str, source: str,
                      location: str, arguments: dict[str, Any], mcp_slack_seconds: int | None = None
                      ) -> GraphLoad:  # fmt: skip
    summary = load_work_graph(conninfo, graph, company=company, source=source,
                              location=location, arguments=arguments)  # fmt: skip
    with psycopg.connect(conninfo) as conn:
        correlation = correlate(conn, ensure_company(conn, company), mcp_slack_seconds)
    return summary, correlation


def ingest_paperclip(conninfo: str, settings: TallySettings, url: str,
                     company: str | None = None, *, full: bool = False) -> GraphLoad:  # fmt: skip
    """One Paperclip company (`company`: id, issue prefix or name; None when it holds one)
    from its database at `url`; raises PaperclipError when it cannot be read. A company whose
    rows are as they were at its last load is not read again (the summary says `unchanged`)
    unless `full`: the hourly ingest of an idle company read and compared every row (13-20 s
    at 50,000 issues and 500,000 run events)."""
    from ingestion.adapters.paperclip import READER_VERSION, paperclip_snapshot
    from ingestion.workgraph.unchanged_upstream import (
        SnapshotState,
        load_context,
        loaded_as,
        remember_load,
    )

    context = load_context(READER_VERSION, settings.company)
    with paperclip_snapshot(psycopg_conninfo(url), company) as snapshot:
        key = f"company {snapshot.company_id}"
        state = SnapshotState(snapshot.content_digest())
        earlier = None if full else loaded_as(conninfo, "paperclip", key, state, context)
        if earlier is not None:
            return LoadSummary(run_id=earlier.run_id, unchanged=True), CorrelationSummary()
        graph = snapshot.graph(stored_run_events(conninfo, settings.company, "paperclip"))
    loaded = ingest_work_graph(
        conninfo, graph, company=settings.company, source="paperclip", location="paperclip",
        arguments={"company": company}, mcp_slack_seconds=settings.mcp_correlation_slack_seconds,
    )  # fmt: skip
    remember_load(conninfo, "paperclip", key, state, context, loaded[0].run_id)
    return loaded


def ingest_pigeon(conninfo: str, settings: TallySettings, path: Path, *, full: bool = False
                  ) -> GraphLoad:  # fmt: skip
    """Pigeon's SQLite file at `path`; raises PigeonError when it cannot be read. A file as
    it was at its last load is not read again (the summary says `unchanged`) unless `full`:
    the hourly ingest of an idle board read and compared every row (10 s at 20,000 cards)."""
    from ingestion.adapters.pigeon import READER_VERSION, read_pigeon
    from ingestion.workgraph.unchanged_upstream import (
        file_state,
        load_context,
        loaded_as,
        remember_load,
    )

    path = path.expanduser().resolve()
    context = load_context(READER_VERSION, settings.company)
    state = file_state(path)
    if state is not None and not full:
        earlier = loaded_as(conninfo, "pigeon", path, state, context)
        if earlier is not None:
            return LoadSummary(run_id=earlier.run_id, unchanged=True), CorrelationSummary()
    graph = read_pigeon(path)
    loaded = ingest_work_graph(
        conninfo, graph, company=settings.company, source="pigeon", location=str(path),
        arguments={"db": str(path)}, mcp_slack_seconds=settings.mcp_correlation_slack_seconds,
    )  # fmt: skip
    if state is not None and not state.racy:
        remember_load(conninfo, "pigeon", path, state, context, loaded[0].run_id)
    return loaded


def configured_upstreams(conninfo: str, settings: TallySettings, pigeon_db: Path | None = None
                         ) -> dict[str, Callable[[], GraphLoad]]:  # fmt: skip
    """The ingest of each work-graph upstream the settings name (`pigeon_db` in place of
    TALLY_PIGEON_DB when given), by source name; each raises PaperclipError or PigeonError
    when its upstream cannot be read."""
    loads: dict[str, Callable[[], GraphLoad]] = {}
    pigeon = pigeon_db or settings.pigeon_db
    if pigeon is not None:
        loads["pigeon"] = lambda: ingest_pigeon(conninfo, settings, pigeon)
    if settings.paperclip_url:
        url = settings.paperclip_url
        loads["paperclip"] = lambda: ingest_paperclip(conninfo, settings, url)
    return loads
