"""Load an upstream's work graph, then correlate sessions over the whole company: new runs,
projects or MCP sessions can link sessions read long before."""

from __future__ import annotations

from typing import Any

import psycopg

from ingestion.correlation import CorrelationSummary, correlate
from ingestion.loader import ensure_company
from ingestion.workgraph.loader import LoadSummary, load_work_graph
from ingestion.workgraph.records import WorkGraph


def ingest_work_graph(conninfo: str, graph: WorkGraph, *, company: str, source: str,
                      location: str, arguments: dict[str, Any], mcp_slack_seconds: int | None = None
                      ) -> tuple[LoadSummary, CorrelationSummary]:  # fmt: skip
    summary = load_work_graph(conninfo, graph, company=company, source=source,
                              location=location, arguments=arguments)  # fmt: skip
    with psycopg.connect(conninfo) as conn:
        correlation = correlate(conn, ensure_company(conn, company), mcp_slack_seconds)
    return summary, correlation
