"""The attribution reports over a warehouse filled from a hand-made `usage_attributed`."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import polars as pl

from assets.attribution.transform import attribution_daily
from ingestion.reports.attribution import cost_by_work_item, coverage, issue_cost
from ingestion.warehouse.base import open_warehouse
from schemas.warehouse import ATTRIBUTION_DAILY, USAGE_ATTRIBUTED

DAY_1, DAY_2 = date(2026, 10, 6), date(2026, 10, 7)
TYPES = {"date": pl.Date, "timestamp": pl.Datetime("us", "UTC"), "text": pl.String,
         "int": pl.Int64, "float": pl.Float64, "money": pl.Decimal(38, 12)}  # fmt: skip


def _event(n: int, session: str, at: datetime, signal: str, issue: int | None) -> dict:
    row = {name: None for name in USAGE_ATTRIBUTED.column_names}
    row.update({
        "day": at.date(), "event_id": n, "company_id": 1, "source": "claude_code",
        "session_key": session, "root_session_key": session, "message_id": f"m{n}",
        "request_id": f"r{n}", "project": "web", "occurred_at": at, "model": "m",
        "input_tokens": 10, "output_tokens": 1, "reasoning_tokens": 0, "cache_read_tokens": 0,
        "cache_write_5m_tokens": 0, "cache_write_1h_tokens": 0,
        "computed_cost_usd": Decimal(1), "cost_usd": Decimal(1), "pricing_status": "priced",
        "signal": signal, "confidence": None if issue is None else 0.9,
        "reason": "no-signal" if issue is None else None,
    })  # fmt: skip
    if issue is not None:
        row.update({"issue_id": issue, "issue_source": "paperclip", "issue_external_id": "u-7",
                    "issue_number": 7, "issue_identifier": "PAP-7", "issue_title": "Invoices",
                    "issue_status": "in_progress", "issue_project": "web",
                    "goal": "Billing"})  # fmt: skip
    return row


def test_sessions_are_counted_once_whatever_days_and_signals_they_span(tmp_path):
    """The daily rollup counts sessions per day and signal: summed, a session that went on
    past midnight, or was attributed by two signals, counted twice for its issue."""
    at = lambda day, hour: datetime(day.year, day.month, day.day, hour, tzinfo=UTC)  # noqa: E731
    events = [
        _event(1, "s", at(DAY_1, 23), "explicit", 7),
        _event(2, "s", at(DAY_2, 1), "session-recent-touch", 7),
        _event(3, "t", at(DAY_1, 10), "explicit", 7),
        _event(4, "u", at(DAY_1, 11), "unattributed", None),
        _event(5, "u", at(DAY_2, 11), "unattributed", None),
    ]
    schema = {name: TYPES[kind] for name, kind in USAGE_ATTRIBUTED.columns}
    attributed = pl.DataFrame(events, schema=schema)
    warehouse = open_warehouse(f"duckdb://{tmp_path / 'w.duckdb'}")
    warehouse.replace_window(USAGE_ATTRIBUTED, DAY_1, DAY_2, attributed)
    warehouse.replace_window(ATTRIBUTION_DAILY, DAY_1, DAY_2, attribution_daily(attributed))

    issue, rest = cost_by_work_item(warehouse, "issue")
    assert (issue["issue_identifier"], issue["requests"], issue["sessions"]) == ("PAP-7", 3, 2)
    assert (rest["issue_title"], rest["sessions"]) == ("(unattributed)", 1)
    (goal, _) = cost_by_work_item(warehouse, "goal")
    assert (goal["goal"], goal["sessions"]) == ("Billing", 2)
    assert issue_cost(warehouse, 1, 7)["sessions"] == 2
    by_signal = {row["signal"]: row["sessions"] for row in coverage(warehouse)["rows"]}
    assert by_signal == {"explicit": 2, "session-recent-touch": 1, "unattributed": 1}
    # one day alone counts that day's sessions
    (day_1, _) = cost_by_work_item(warehouse, "issue", since=DAY_1, until=DAY_1)
    assert day_1["sessions"] == 2


def test_an_issue_is_described_as_its_latest_materialised_day_shows_it(tmp_path):
    """Each day keeps the issue as it was when that day was materialised: an issue finished
    on day 2 is `in_progress` in day 1's rows. The reports once took whichever row came
    first, and the median cost per completed issue summed only the rows that said `done`."""
    at = lambda day, hour: datetime(day.year, day.month, day.day, hour, tzinfo=UTC)  # noqa: E731
    events = [_event(1, "s", at(DAY_1, 9), "explicit", 7),
              _event(2, "s", at(DAY_1, 10), "explicit", 7),
              _event(3, "s", at(DAY_2, 9), "explicit", 7)]  # fmt: skip
    events[2].update(issue_status="done", issue_title="Invoices, sent",
                     issue_completed_at=at(DAY_2, 12))  # fmt: skip
    schema = {name: TYPES[kind] for name, kind in USAGE_ATTRIBUTED.columns}
    attributed = pl.DataFrame(events, schema=schema)
    warehouse = open_warehouse(f"duckdb://{tmp_path / 'w.duckdb'}")
    warehouse.replace_window(USAGE_ATTRIBUTED, DAY_1, DAY_2, attributed)
    warehouse.replace_window(ATTRIBUTION_DAILY, DAY_1, DAY_2, attribution_daily(attributed))

    (issue,) = cost_by_work_item(warehouse, "issue")
    assert (issue["issue_status"], issue["issue_title"]) == ("done", "Invoices, sent")
    assert issue_cost(warehouse, 1, 7)["issue_status"] == "done"
    summary = coverage(warehouse)
    assert summary["completed_issues"] == 1
    assert summary["median_cost_per_completed_issue"] == Decimal(3)  # all three requests
    assert coverage(warehouse, since=DAY_1, until=DAY_1)["completed_issues"] == 0
