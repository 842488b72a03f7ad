"""Batches of records: the envelope, per-record validation, and the per-record answer.

A malformed body (not JSON, no `records` list, a key besides it, more than 1,000 records) is
answered 422 as a whole; a record that fails its model is `rejected` with the field paths and
reasons while the valid records of the same batch are written."""

from __future__ import annotations

import json
import types
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from api.errors import ApiError, ErrorDetail
from ingestion.adapters.common import lone_surrogates_replaced

MAX_RECORDS = 1000
M = TypeVar("M", bound=BaseModel)
Status = Literal["accepted", "duplicate", "rejected"]


def no_nul(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL: refuse it with a reason rather than fail the batch."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL (\\u0000) characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            no_nul(key)
            no_nul(item)
    elif isinstance(value, list):
        for item in value:
            no_nul(item)
    return value


NUMBER_TYPES = (int, float, Decimal)


def _types_of(annotation: Any) -> set[Any]:
    """The types a field admits: the members of a union, else the annotation itself (either
    without its `Annotated` constraints)."""
    if get_origin(annotation) in (Union, types.UnionType):
        return {member for arg in get_args(annotation) for member in _types_of(arg)}
    if get_origin(annotation) is Annotated:
        return _types_of(get_args(annotation)[0])
    return {annotation}


class RecordModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def text_without_nul(cls, data: Any) -> Any:
        return no_nul(data)

    @field_validator("*", mode="before")
    @classmethod
    def numbers_are_not_booleans(cls, value: Any, info: ValidationInfo) -> Any:
        """pydantic reads `true` as 1 where a number is due: a hook that sent a flag for a
        count would have its requests stored as one token."""
        if isinstance(value, bool) and info.field_name is not None:
            admitted = _types_of(cls.model_fields[info.field_name].annotation)
            if bool not in admitted and admitted & set(NUMBER_TYPES):
                raise ValueError("a number is required, not true or false")
        return value


class RecordResult(BaseModel):
    index: int = Field(description="Position of the record in the batch.")
    status: Status
    reason: str | None = Field(default=None, description="Why a record was rejected.")


class BatchAnswer(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    results: list[RecordResult]


class Outcome:
    """Collects each record's status as the batch is processed."""

    def __init__(self, size: int) -> None:
        self.status: list[Status | None] = [None] * size
        self.reasons: list[str | None] = [None] * size

    def reject(self, index: int, reason: str) -> None:
        self.status[index], self.reasons[index] = "rejected", reason

    def set(self, index: int, status: Status) -> None:
        self.status[index] = status

    def answer(self) -> BatchAnswer:
        results = [
            RecordResult(index=i, status=s or "rejected", reason=r)
            for i, (s, r) in enumerate(zip(self.status, self.reasons, strict=True))
        ]
        return BatchAnswer(
            accepted=sum(r.status == "accepted" for r in results),
            duplicates=sum(r.status == "duplicate" for r in results),
            rejected=sum(r.status == "rejected" for r in results),
            results=results,
        )


def _json(body: bytes, repaired: bool = False) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as refused:
        if "surrogate" in str(refused) and not repaired:
            # a hook's JSON.stringify of text with an emoji cut in two: read as the files are
            return _json(lone_surrogates_replaced(body), repaired=True)
        return json.loads(body)  # orjson refuses integers beyond 64 bits, which JSON allows


def parse_batch(body: bytes, model: type[M]) -> tuple[list[tuple[int, M]], Outcome]:
    try:
        payload = _json(body)
    except (ValueError, RecursionError) as error:
        raise ApiError(422, "invalid", f"the body is not JSON: {error}") from None
    records = payload.get("records") if isinstance(payload, dict) else None
    unknown = sorted(set(payload) - {"records"}) if isinstance(payload, dict) else []
    if unknown:
        # as the document states (additionalProperties: false), and as a record's own unknown
        # fields are refused: a key the API would ignore is a client's mistake to hear of
        raise ApiError(
            422,
            "invalid",
            f"the body holds `records` only, not {', '.join(map(repr, unknown))}",
            [ErrorDetail(loc=["body", key], message="unknown key") for key in unknown],
        )
    if not isinstance(records, list):
        raise ApiError(
            422,
            "invalid",
            "the body must be an object with a `records` list",
            [ErrorDetail(loc=["body", "records"], message="a list is required")],
        )
    if not 1 <= len(records) <= MAX_RECORDS:
        raise ApiError(
            422,
            "invalid",
            f"a batch holds 1 to {MAX_RECORDS} records, not {len(records)}",
            [ErrorDetail(loc=["body", "records"], message="too many or no records")],
        )
    outcome = Outcome(len(records))
    valid = []
    for index, raw in enumerate(records):
        try:
            valid.append((index, model.model_validate(raw)))
        except ValidationError as error:
            reason = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}"
                for e in error.errors()
            )
            outcome.reject(index, reason)
    return valid, outcome


def batch_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The request body as OpenAPI documents it (the route parses it itself, to answer per
    record)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["records"],
                        "additionalProperties": False,
                        "properties": {
                            "records": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": MAX_RECORDS,
                                "items": {"$ref": f"#/components/schemas/{model.__name__}"},
                            }
                        },
                    }
                }
            },
        }
    }
