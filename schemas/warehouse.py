"""Warehouse tables: backend-neutral definitions that every backend creates from.

Each table is replaced one time window at a time, by `window_column` (a UTC day)."""

from __future__ import annotations

from dataclasses import dataclass

# Logical column types; each backend maps them to its own.
DATE, TIMESTAMP, TEXT, INT, BOOL, MONEY = "date", "timestamp", "text", "int", "bool", "money"
FLOAT = "float"


@dataclass(frozen=True)
class WarehouseTable:
    name: str
    columns: tuple[tuple[str, str], ...]
    window_column: str
    order_by: tuple[str, ...]
    description: str
    # Raised when what a column holds changes though the columns do not: a warehouse table
    # of another revision is emptied on first use, like one whose columns differ, and the
    # store's days it no longer holds are re-materialised by the catch-up (`hourly_costs`)
    # and priced live by reports until then, instead of mixing the two meanings.
    revision: int = 1

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


TOKEN_COLUMNS = (
    ("input_tokens", INT),
    ("output_tokens", INT),
    ("reasoning_tokens", INT),
    ("cache_read_tokens", INT),
    ("cache_write_5m_tokens", INT),
    ("cache_write_1h_tokens", INT),
)

# The token split every report and table shares (input is uncached; reasoning is part of
# output).
TOKEN_NAMES = tuple(name for name, _ in TOKEN_COLUMNS)

USAGE_PRICED = WarehouseTable(
    name="usage_priced",
    description="Every usage event of the day with its cost in exact USD, priced at the "
    "price that held on the day; tool-reported cost kept beside the computed one.",
    window_column="day",
    order_by=("day", "source", "occurred_at"),
    revision=2,  # 2: cost_usd is the auto cost (the reported one first), as in every rollup
    columns=(
        ("day", DATE),
        ("event_id", INT),
        ("company_id", INT),
        ("source", TEXT),
        ("session_key", TEXT),
        ("root_session_key", TEXT),
        ("project", TEXT),
        ("agent", TEXT),
        ("occurred_at", TIMESTAMP),
        ("provider", TEXT),
        ("model", TEXT),
        *TOKEN_COLUMNS,
        ("web_search_requests", INT),
        ("service_tier", TEXT),
        ("speed", TEXT),
        ("long_context", BOOL),
        ("input_cost_usd", MONEY),
        ("output_cost_usd", MONEY),
        ("cache_read_cost_usd", MONEY),
        ("cache_write_cost_usd", MONEY),
        ("web_search_cost_usd", MONEY),
        ("computed_cost_usd", MONEY),
        ("reported_cost_usd", MONEY),
        ("cost_usd", MONEY),
        ("pricing_status", TEXT),
        ("unpriced_reason", TEXT),
        ("price_source", TEXT),
        ("matched_model", TEXT),
    ),
)

COST_DAILY = WarehouseTable(
    name="cost_daily",
    description="Cost and tokens by day x source x project x agent x session x model, "
    "with billed and notional (API-equivalent) cost and the unpriced remainder.",
    window_column="day",
    order_by=("day", "source", "project", "model"),
    # 2: subscription_covered, so that billed cost follows a report's cost mode
    revision=2,
    columns=(
        ("day", DATE),
        ("company_id", INT),
        ("source", TEXT),
        ("project", TEXT),
        ("agent", TEXT),
        ("session_key", TEXT),
        ("model", TEXT),
        ("requests", INT),
        *TOKEN_COLUMNS,
        ("web_search_requests", INT),
        ("computed_cost_usd", MONEY),
        ("reported_cost_usd", MONEY),
        ("cost_usd", MONEY),
        ("billed_cost_usd", MONEY),
        ("notional_cost_usd", MONEY),
        ("subscription_covered", BOOL),
        ("unpriced_requests", INT),
        ("unpriced_tokens", INT),
        ("first_at", TIMESTAMP),
        ("last_at", TIMESTAMP),
    ),
)

# The work item an event was attributed to, as it was when the window was materialised.
ISSUE_COLUMNS = (
    ("issue_id", INT),
    ("issue_source", TEXT),
    ("issue_external_id", TEXT),
    ("issue_number", INT),
    ("issue_identifier", TEXT),
    ("issue_title", TEXT),
    ("issue_status", TEXT),
    ("issue_completed_at", TIMESTAMP),
    ("issue_project", TEXT),
    ("goal", TEXT),
)

USAGE_ATTRIBUTED = WarehouseTable(
    name="usage_attributed",
    description="Every priced usage event of the day with the work item it served: the "
    "deciding signal, a confidence, the reason when unattributed, and the evidence.",
    window_column="day",
    order_by=("day", "root_session_key", "occurred_at"),
    revision=2,  # 2: cost_usd is the auto cost, taken from usage_priced's revision 2
    columns=(
        ("day", DATE),
        ("event_id", INT),
        ("company_id", INT),
        ("source", TEXT),
        ("session_key", TEXT),
        ("root_session_key", TEXT),
        ("message_id", TEXT),
        ("request_id", TEXT),
        ("project", TEXT),
        ("agent", TEXT),
        ("occurred_at", TIMESTAMP),
        ("model", TEXT),
        *TOKEN_COLUMNS,
        ("computed_cost_usd", MONEY),
        ("reported_cost_usd", MONEY),
        ("cost_usd", MONEY),
        ("pricing_status", TEXT),
        *ISSUE_COLUMNS,
        ("signal", TEXT),
        ("confidence", FLOAT),
        ("reason", TEXT),
        ("hint_id", TEXT),
        ("touched_at", TIMESTAMP),
        ("commit_hash", TEXT),
        ("engine_version", TEXT),
    ),
)

ATTRIBUTION_DAILY = WarehouseTable(
    name="attribution_daily",
    description="Cost and tokens by day x work item x signal x reason, with the session's "
    "source, project and agent: the base of every rollup by issue, goal, project and agent.",
    window_column="day",
    order_by=("day", "issue_id", "signal"),
    revision=2,  # 2: cost_usd is the auto cost, taken from usage_priced's revision 2
    columns=(
        ("day", DATE),
        ("company_id", INT),
        *ISSUE_COLUMNS,
        ("signal", TEXT),
        ("confidence", FLOAT),
        ("reason", TEXT),
        ("source", TEXT),
        ("project", TEXT),
        ("agent", TEXT),
        ("requests", INT),
        *TOKEN_COLUMNS,
        ("tokens", INT),
        ("computed_cost_usd", MONEY),
        ("reported_cost_usd", MONEY),
        ("cost_usd", MONEY),
        ("sessions", INT),
    ),
)

WAREHOUSE_TABLES = (USAGE_PRICED, COST_DAILY, USAGE_ATTRIBUTED, ATTRIBUTION_DAILY)
