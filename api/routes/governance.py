"""Governance writes for the board (board keys): budget policies, approval decisions,
performance interventions, price overrides, evaluation rubrics and human annotations."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends
from psycopg.rows import dict_row
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from api.batch import RecordModel
from api.crud import EntityId, Resource, audit, fetch
from api.decimals import DecimalText, FixedDecimal
from api.deps import ApiState, connection, require
from api.errors import ApiError, ErrorDetail, conflict, error_responses
from api.records import Timestamp
from api.writes import Directory
from ingestion.keys import Principal
from ingestion.model_patterns import compile_model_pattern
from ingestion.price_overrides import override_doubt
from schemas.money import USD_LIMIT

Money = Annotated[Decimal, Field(ge=0, lt=USD_LIMIT, decimal_places=12), DecimalText()]
Amount = Annotated[Decimal, Field(gt=0, lt=USD_LIMIT, decimal_places=12), DecimalText()]
Score = Annotated[Decimal, Field(ge=-(10**5), le=10**5, decimal_places=4), DecimalText()]
Name = Annotated[str, Field(min_length=1, max_length=300)]
Text = Annotated[str | None, Field(max_length=10_000)]


# the same rules as ingested records: unknown fields refused, text trimmed, no NUL
Body = RecordModel


class Out(BaseModel):
    """What a governance entity reads as; every one keeps when it was made and changed."""

    model_config = ConfigDict(extra="ignore")
    created_at: datetime
    updated_at: datetime


def _unknown(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid", message, [ErrorDetail(loc=["body", field], message=message)])


def _agent(conn: psycopg.Connection[Any], caller: Principal, ref: str, field: str) -> int:
    row = conn.execute(
        """SELECT id FROM agents WHERE company_id = %s AND (external_id = %s OR name = %s)
           ORDER BY (external_id = %s) DESC, id LIMIT 1""",
        (caller.company_id, ref, ref, ref),
    ).fetchone()
    if row is None:
        raise _unknown(field, f"{ref!r} is not an agent of this company")
    return int(row[0])


def _project(conn: psycopg.Connection[Any], caller: Principal, ref: str, field: str) -> int:
    row = conn.execute(
        """SELECT id FROM projects WHERE company_id = %s
             AND (external_id = %s OR name = %s OR key = %s)
           ORDER BY (external_id = %s) DESC, id LIMIT 1""",
        (caller.company_id, ref, ref, ref, ref),
    ).fetchone()
    if row is None:
        raise _unknown(field, f"{ref!r} is not a project of this company")
    return int(row[0])


def _issue(conn: psycopg.Connection[Any], caller: Principal, ref: str, field: str) -> int:
    issue, problem = Directory(conn, caller).issue(ref)
    if issue is None:
        raise _unknown(field, problem or f"{ref!r} is not an issue")
    return issue


# -- budget policies -------------------------------------------------------------------------

ScopeType = Literal["company", "agent", "project", "issue"]
WindowKind = Literal["calendar_month", "day", "rolling_days", "lifetime"]
Metric = Literal["usd", "tokens", "runs"]


class BudgetPolicyIn(Body):
    name: Annotated[str | None, Field(max_length=300)] = None
    scope_type: ScopeType
    scope: Annotated[
        str | None,
        Field(
            max_length=300,
            description="The agent, project or "
            "issue (upstream id, name or identifier); none for "
            "the company.",
        ),
    ] = None
    window_kind: WindowKind
    window_days: Annotated[int | None, Field(ge=1, le=3660)] = None
    metric: Metric
    amount: Amount
    warn_percent: Annotated[int, Field(ge=1, le=100)] = 80
    hard_stop: bool = False
    active: bool = True


class BudgetPolicyPatch(Body):
    name: Annotated[str | None, Field(max_length=300)] = None
    window_kind: WindowKind | None = None
    window_days: Annotated[int | None, Field(ge=1, le=3660)] = None
    amount: Amount | None = None
    warn_percent: Annotated[int | None, Field(ge=1, le=100)] = None
    hard_stop: bool | None = None
    active: bool | None = None


class BudgetPolicyOut(Out):
    id: int
    name: str | None
    scope_type: ScopeType
    scope_id: int | None
    window_kind: WindowKind
    window_days: int | None
    metric: Metric
    amount: FixedDecimal
    warn_percent: int
    hard_stop: bool
    active: bool


def _prepare_policy(
    conn: psycopg.Connection[Any], caller: Principal, values: dict[str, Any]
) -> dict[str, Any]:
    values = {k: v for k, v in values.items() if v is not None or k in ("name", "window_days")}
    if "scope_type" in values:
        scope_type, scope = values["scope_type"], values.pop("scope", None)
        if scope_type == "company":
            if scope is not None:
                raise _unknown("scope", "a company policy takes no scope")
            values["scope_id"] = None
        elif scope is None:
            raise _unknown("scope", f"a {scope_type} policy needs its {scope_type}")
        else:
            resolve = {"agent": _agent, "project": _project, "issue": _issue}[scope_type]
            values["scope_id"] = resolve(conn, caller, scope, "scope")
    if values.get("window_kind") == "rolling_days" and not values.get("window_days"):
        raise _unknown("window_days", "a rolling window needs window_days")
    if values.get("window_kind") not in (None, "rolling_days"):
        values["window_days"] = None
    return values


# -- price overrides -------------------------------------------------------------------------


class PriceOverridePatch(Body):
    """What an override's change may touch: its end and its prices (its key stays)."""

    effective_to: date | None = None
    input_per_mtok: Money | None = None
    output_per_mtok: Money | None = None
    cache_read_per_mtok: Money | None = None
    cache_write_5m_per_mtok: Money | None = None
    cache_write_1h_per_mtok: Money | None = None
    web_search_per_thousand: Money | None = None
    note: Text = None


class PriceOverrideIn(PriceOverridePatch):
    provider: Name
    model_pattern: Annotated[
        str,
        Field(
            min_length=1,
            max_length=500,
            description="A regex (RE2 syntax: no lookarounds or backreferences) matching "
            "whole model names.",
        ),
    ]
    effective_from: date

    @field_validator("model_pattern")
    @classmethod
    def a_regex(cls, value: str) -> str:
        compile_model_pattern(value)  # its InvalidModelPattern (a ValueError) says why
        return value


class PriceOverrideOut(Out):
    id: int
    for_every_company: bool = Field(
        default=False,
        description="Made with the operator's `tally prices set`: it prices every company's "
        "usage, and a company's own override for the same requests wins over it; read-only here.",
    )
    provider: str
    model_pattern: str
    effective_from: date
    effective_to: date | None
    input_per_mtok: FixedDecimal | None
    output_per_mtok: FixedDecimal | None
    cache_read_per_mtok: FixedDecimal | None
    cache_write_5m_per_mtok: FixedDecimal | None
    cache_write_1h_per_mtok: FixedDecimal | None
    web_search_per_thousand: FixedDecimal | None
    note: str | None
    warnings: list[str] = Field(
        default_factory=list,
        description="On a create or a change: why the override may never apply (a provider "
        "no usage is from and the pricing library does not know, or a pattern matching none "
        "of the provider's models with usage), and the materialised days holding usage it "
        "covers, which keep their costs until re-materialised (with the command). The "
        "override is kept.",
    )

    @model_validator(mode="before")
    @classmethod
    def scope(cls, row: Any) -> Any:
        if isinstance(row, dict) and "company_id" in row:
            return {**row, "for_every_company": row["company_id"] is None}
        return row


# How long a price-override write waits for the warehouse to tell which days it leaves stale.
NOTE_WAIT_SECONDS = 2.0


def _price_doubts(
    conn: psycopg.Connection[Any], caller: Principal, row: dict[str, Any], api: ApiState
) -> list[str]:
    """Why it may never apply; and which materialised days hold usage it covers, priced as
    before this write, with the command that re-prices them (a report of those days shows
    the old costs until then)."""
    from ingestion.price_overrides import rematerialise_note

    doubt = override_doubt(conn, caller.company_id, row["provider"], row["model_pattern"])
    note = rematerialise_note(
        api.warehouse_url, row["provider"], row["model_pattern"], row["effective_from"],
        row["effective_to"], "usage it covers is stored priced as before",
        company_id=caller.company_id, wait_seconds=NOTE_WAIT_SECONDS,
    )  # fmt: skip
    return [text for text in (doubt, note) if text]


def _prepare_price(
    conn: psycopg.Connection[Any], caller: Principal, values: dict[str, Any]
) -> dict[str, Any]:
    start, end = values.get("effective_from"), values.get("effective_to")
    if start and end and end <= start:
        raise _unknown("effective_to", "effective_to must be after effective_from")
    return values


def _price_change(before: dict[str, Any], changes: dict[str, Any]) -> None:
    end = changes.get("effective_to", before["effective_to"])
    if end is not None and end <= before["effective_from"]:
        raise _unknown("effective_to", "effective_to must be after effective_from "
                       f"({before['effective_from'].isoformat()})")  # fmt: skip


# -- performance interventions ---------------------------------------------------------------


class InterventionIn(Body):
    agent: Name
    issue: Annotated[str | None, Field(max_length=300)] = None
    kind: Annotated[
        str, Field(min_length=1, max_length=100, description="prompt, model, budget, pause, ...")
    ]
    reason: Text = None
    effective_at: Timestamp
    ended_at: Timestamp | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def ends_after_it_takes_effect(self) -> "InterventionIn":
        if self.ended_at is not None and self.ended_at < self.effective_at:
            raise ValueError("ended_at is before effective_at")
        return self


class InterventionPatch(Body):
    status: Literal["active", "ended"] | None = None
    reason: Text = None
    ended_at: Timestamp | None = None
    details: dict[str, Any] | None = None


class InterventionOut(Out):
    id: int
    agent_id: int | None
    issue_id: int | None
    kind: str
    reason: str | None
    status: str
    effective_at: datetime
    ended_at: datetime | None
    details: dict[str, Any]
    created_by: str | None


def _prepare_intervention(
    conn: psycopg.Connection[Any], caller: Principal, values: dict[str, Any]
) -> dict[str, Any]:
    if "agent" in values:
        values["agent_id"] = _agent(conn, caller, values.pop("agent"), "agent")
        issue = values.pop("issue", None)
        values["issue_id"] = _issue(conn, caller, issue, "issue") if issue else None
        values["created_by"] = f"api_key:{caller.key_id}"
    if values.get("details") is None:
        values.pop("details", None)
    if values.get("status") is None:
        values.pop("status", None)
    elif values["status"] == "ended" and values.get("ended_at") is None:
        # ended without a time: it ends now (an intervention ended with no end would read as
        # lasting for ever)
        values["ended_at"] = datetime.now(UTC)
    return values


def _intervention_change(before: dict[str, Any], changes: dict[str, Any]) -> None:
    ended = changes.get("ended_at", before["ended_at"])
    if ended is not None and ended < before["effective_at"]:
        raise _unknown("ended_at", "ended_at is before the intervention's effective_at "
                       f"({before['effective_at'].isoformat()})")  # fmt: skip


# -- evaluation rubrics and annotations ------------------------------------------------------


class RubricIn(Body):
    name: Name
    version: Annotated[int, Field(ge=1, le=10**6)] = 1
    description: Text = None
    criteria: dict[str, Any]
    active: bool = True


class RubricPatch(Body):
    description: Text = None
    criteria: dict[str, Any] | None = None
    active: bool | None = None


class RubricOut(Out):
    id: int
    name: str
    version: int
    description: str | None
    criteria: dict[str, Any]
    active: bool


def _drop_nulls(
    conn: psycopg.Connection[Any], caller: Principal, values: dict[str, Any]
) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None or k in ("description", "note")}


TARGETS = {
    "heartbeat_run": "heartbeat_runs",
    "agent_session": "agent_sessions",
    "token_usage_event": "token_usage_events",
    "issue": "issues",
}


class AnnotationIn(Body):
    target_type: Literal["heartbeat_run", "agent_session", "token_usage_event", "issue"]
    target_id: Annotated[int | None, Field(ge=1, le=2**63 - 1)] = None
    target: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=300,
            description="The target by its own key, instead of tally's `target_id`: a run's id "
            "(`run_id`, Paperclip's run id), a session's id, a request's `message_id` (as the "
            "attribution export lists them) or an issue (upstream id or identifier).",
        ),
    ] = None
    rubric_id: Annotated[int | None, Field(ge=1, le=2**63 - 1)] = None
    score: Score | None = None
    label: Annotated[str | None, Field(max_length=300)] = None
    comment: Text = None
    annotator: Annotated[str | None, Field(max_length=300)] = None

    @model_validator(mode="after")
    def one_target(self) -> "AnnotationIn":
        if (self.target_id is None) == (self.target is None):
            raise ValueError("name the target by target_id or by target, one of the two")
        return self


# How `target` finds each kind of target: the column holding its own key.
TARGET_KEYS = {
    "heartbeat_run": ("heartbeat_runs", "external_id", "run"),
    "agent_session": ("agent_sessions", "session_key", "session"),
    "token_usage_event": ("token_usage_events", "message_id", "request with message id"),
}


class AnnotationPatch(Body):
    score: Score | None = None
    label: Annotated[str | None, Field(max_length=300)] = None
    comment: Text = None


class AnnotationOut(Out):
    id: int
    target_type: str
    target_id: int
    rubric_id: int | None
    score: FixedDecimal | None
    label: str | None
    comment: str | None
    annotator: str | None


def _target(conn: psycopg.Connection[Any], caller: Principal, kind: str, ref: str) -> int:
    """The id of the company's `kind` whose own key is `ref`: the ids the reads show (a
    session id, a message id, an issue identifier) rather than tally's row ids, which no read
    lists."""
    if kind == "issue":
        return _issue(conn, caller, ref, "target")
    table, column, noun = TARGET_KEYS[kind]
    rows = conn.execute(
        f"SELECT id FROM {table} WHERE company_id = %s AND {column} = %s ORDER BY id LIMIT 2",
        (caller.company_id, ref),
    ).fetchall()
    if not rows:
        raise _unknown("target", f"no {noun} {ref!r} in this company")
    if len(rows) > 1:  # the same key from two sources
        raise _unknown("target", f"several targets have the key {ref!r}: give target_id")
    return int(rows[0][0])


def _prepare_annotation(
    conn: psycopg.Connection[Any], caller: Principal, values: dict[str, Any]
) -> dict[str, Any]:
    if "target_type" in values:
        if (ref := values.pop("target", None)) is not None:
            values["target_id"] = _target(conn, caller, values["target_type"], ref)
        table = TARGETS[values["target_type"]]
        found = conn.execute(
            f"SELECT 1 FROM {table} WHERE id = %s AND company_id = %s",
            (values["target_id"], caller.company_id),
        ).fetchone()
        if found is None:
            raise _unknown(
                "target_id", f"no {values['target_type']} {values['target_id']} in this company"
            )
        if values.get("rubric_id") is not None:
            rubric = conn.execute(
                "SELECT 1 FROM evaluation_rubrics WHERE id = %s AND company_id = %s",
                (values["rubric_id"], caller.company_id),
            ).fetchone()
            if rubric is None:
                raise _unknown("rubric_id", f"no rubric {values['rubric_id']} in this company")
        values["annotator"] = values.get("annotator") or f"api_key:{caller.key_id}"
    return values


RESOURCES = (
    Resource(
        "/budget-policies",
        "budget_policies",
        "budget_policy",
        BudgetPolicyIn,
        BudgetPolicyPatch,
        BudgetPolicyOut,
        _prepare_policy,
    ),
    Resource(
        "/price-overrides",
        "price_overrides",
        "price_override",
        PriceOverrideIn,
        PriceOverridePatch,
        PriceOverrideOut,
        _prepare_price,
        doubts=_price_doubts,
        consistent=_price_change,
        shared_rows=True,
    ),
    Resource(
        "/interventions",
        "performance_interventions",
        "intervention",
        InterventionIn,
        InterventionPatch,
        InterventionOut,
        _prepare_intervention,
        consistent=_intervention_change,
    ),
    Resource(
        "/evaluation-rubrics",
        "evaluation_rubrics",
        "evaluation_rubric",
        RubricIn,
        RubricPatch,
        RubricOut,
        _drop_nulls,
    ),
    Resource(
        "/annotations",
        "human_annotations",
        "annotation",
        AnnotationIn,
        AnnotationPatch,
        AnnotationOut,
        _prepare_annotation,
    ),
)

# -- approvals -------------------------------------------------------------------------------


class ApprovalOut(Out):
    id: int
    kind: str
    status: str
    subject_type: str | None
    subject_id: int | None
    payload: dict[str, Any]
    requested_by: str | None
    decided_by: str | None
    decision_note: str | None
    decided_at: datetime | None


class DecisionIn(Body):
    decision: Literal["approved", "rejected", "revision_requested"]
    note: Text = None


approvals = APIRouter(prefix="/v1", tags=["governance"])
Board = Annotated[Principal, Depends(require("board"))]
Db = Annotated[psycopg.Connection[Any], Depends(connection)]


@approvals.get(
    "/approvals", response_model=list[ApprovalOut], responses=error_responses(401, 403, 422)
)
def list_approvals(
    caller: Board,
    conn: Db,
    status: Literal["pending", "revision_requested", "approved", "rejected", "cancelled"]
    | None = None,
) -> Any:
    """Approvals of the company, pending first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT * FROM approvals WHERE company_id = %s
                 AND (%s::text IS NULL OR status = %s)
               ORDER BY status <> 'pending', id LIMIT 1000""",
            (caller.company_id, status, status),
        ).fetchall()
    return rows


@approvals.get(
    "/approvals/{entity_id}",
    response_model=ApprovalOut,
    responses=error_responses(401, 403, 404, 422),
)
def read_approval(entity_id: EntityId, caller: Board, conn: Db) -> Any:
    return fetch(conn, "approvals", caller, entity_id, "approval")


@approvals.post(
    "/approvals/{entity_id}/decision",
    response_model=ApprovalOut,
    responses=error_responses(401, 403, 404, 409, 422),
)
def decide(entity_id: EntityId, body: DecisionIn, caller: Board, conn: Db) -> Any:
    """Approve, reject or ask for a revision of a pending approval, with a note."""
    with conn.transaction():
        before = fetch(conn, "approvals", caller, entity_id, "approval", lock=True)
        if before["status"] not in ("pending", "revision_requested"):
            raise conflict(f"approval {entity_id} is {before['status']} already")
        with conn.cursor(row_factory=dict_row) as cur:
            after = cur.execute(
                """UPDATE approvals SET status = %s, decision_note = %s, decided_by = %s,
                       decided_at = now(), updated_at = now() WHERE id = %s RETURNING *""",
                (body.decision, body.note, f"api_key:{caller.key_id}", entity_id),
            ).fetchone()
        audit(conn, caller, f"approval.{body.decision}", "approval", entity_id, before, after)
    return after


def routers() -> list[APIRouter]:
    return [*(resource.router("governance") for resource in RESOURCES), approvals]
