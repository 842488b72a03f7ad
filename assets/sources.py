"""The canonical store's source tables: usage from the agent logs on this machine, and the
work graph from the upstreams configured (Paperclip, Pigeon)."""

import dagster as dg

from assets.resources import CanonicalStoreResource
from ingestion.settings import get_settings


@dg.asset(group_name="sources", kinds={"postgres", "python"}, pool="ingestion")
def token_usage_events(
    context: dg.AssetExecutionContext, canonical_store: CanonicalStoreResource
) -> dg.MaterializeResult:
    """Every model request of the Claude Code transcripts under TALLY_CLAUDE_DIR (or every
    Claude Code default that exists) and the Codex rollouts under TALLY_CODEX_DIR (and
    Codex's `archived_sessions` beside it), deduplicated, read incrementally (only what was
    appended since the last run)."""
    from ingestion.runner import IngestRun
    from ingestion.sources import AGENT_LOG_SOURCES, log_directories

    settings = get_settings()
    metadata: dict[str, dg.RawMetadataValue] = {}
    files_read = 0
    for source in AGENT_LOG_SOURCES:
        roots = log_directories(source, settings)
        if not roots[0].exists():  # a directory, or one log file
            context.log.info(f"{source.label}: no directory at {roots[0]}")
            continue
        for index, root in enumerate(roots):
            summary = IngestRun.from_settings(
                canonical_store.store().conninfo, source, root, settings
            ).run()
            name = source.name if index == 0 else f"{source.name}_{index}"
            metadata[f"{name}_new_events"] = summary.events_new
            metadata[f"{name}_new_tool_calls"] = summary.tool_calls_new
            metadata[f"{name}_files_read"] = summary.files_read
            metadata[f"{name}_rejects"] = summary.rejects
            files_read += summary.files_read
    # sessions and runs written over the API (for any company) or by upstream ingests since
    # the last run get their project, agent, run and MCP links
    from ingestion.correlation import correlate_after_log_ingest

    found = correlate_after_log_ingest(canonical_store.store().conninfo, settings.company,
                                       files_read)  # fmt: skip
    metadata["correlated_links"] = found.total
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(group_name="sources", kinds={"postgres", "python"}, pool="ingestion")
def work_graph(
    context: dg.AssetExecutionContext, canonical_store: CanonicalStoreResource
) -> dg.MaterializeResult:
    """The work items usage is attributed to, from the upstreams configured: Paperclip's
    database (TALLY_PAPERCLIP_URL: agents, projects, goals, issues and their status history,
    heartbeat runs, the cost ledger) and Pigeon's SQLite file (TALLY_PIGEON_DB: cards and
    their moves, activity, git links, tool-call logs), then sessions correlated with them.
    Each upstream is read again whole (a run's events only when its log grew; a Pigeon file
    as it was at its last load not at all) and only what changed is written; with neither
    configured there is nothing to do. An upstream that
    cannot be read fails the materialisation, naming it, after the other has loaded."""
    from ingestion.adapters.paperclip import PaperclipError
    from ingestion.adapters.pigeon import PigeonError
    from ingestion.workgraph.ingest import configured_upstreams

    loads = configured_upstreams(canonical_store.store().conninfo, get_settings())
    if not loads:
        context.log.info("no work-graph upstream configured (TALLY_PAPERCLIP_URL, TALLY_PIGEON_DB)")
    metadata: dict[str, dg.RawMetadataValue] = {"upstreams": ", ".join(loads) or "none"}
    failures = []
    for name, load in loads.items():
        try:
            summary, correlation = load()
        except (PaperclipError, PigeonError) as error:
            failures.append(f"{name}: {error}")
            continue
        metadata[f"{name}_unchanged"] = summary.unchanged
        metadata[f"{name}_rows_changed"] = summary.total_changed
        metadata[f"{name}_rejects"] = summary.rejects
        metadata[f"{name}_issues_gone_upstream"] = summary.issues_gone
        metadata[f"{name}_correlated_links"] = correlation.total
    if failures:
        raise dg.Failure(description="; ".join(failures), metadata=metadata)
    return dg.MaterializeResult(metadata=metadata)
