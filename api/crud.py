"""Create, read, update and delete for a governance table, scoped to the caller's company, with
every write in one transaction together with its `activity_log` row (actor key, action,
entity, before and after)."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from api.deps import ApiState, connection, require, state
from api.errors import ApiError, conflict, error_responses, forbidden, not_found
from ingestion.keys import Principal

Prepare = Callable[[psycopg.Connection[Any], Principal, dict[str, Any]], dict[str, Any]]
# Doubts about a row just written, returned in its `warnings` (the write stands)
Doubts = Callable[[psycopg.Connection[Any], Principal, dict[str, Any], ApiState], list[str]]
Consistent = Callable[[dict[str, Any], dict[str, Any]], None]
EntityId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The entity's id.")]


def jsonable(value: Any) -> Any:
    # the standard library, not orjson: JSON numbers may exceed 64 bits
    return json.loads(json.dumps(value, default=str))


def audit(
    conn: psycopg.Connection[Any],
    caller: Principal,
    action: str,
    entity: str,
    entity_id: Any,
    before: Any,
    after: Any,
) -> None:
    conn.execute(
        """INSERT INTO activity_log (company_id, actor_type, actor_id, action, entity_type,
               entity_id, before, after, occurred_at)
           VALUES (%s, 'api_key', %s, %s, %s, %s, %s, %s, now())""",
        (
            caller.company_id,
            str(caller.key_id),
            action,
            entity,
            str(entity_id),
            None if before is None else Jsonb(jsonable(before)),
            None if after is None else Jsonb(jsonable(after)),
        ),
    )


def fetch(
    conn: psycopg.Connection[Any],
    table: str,
    caller: Principal,
    entity_id: int,
    what: str,
    lock: bool = False,
    shared: bool = False,
) -> dict[str, Any]:
    """The row of the caller's company (or, when `shared`, of no company: one for every
    company); 403 when it belongs to another company, 404 when there is none."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT * FROM {table} WHERE id = %s{' FOR UPDATE' if lock else ''}", (entity_id,)
        ).fetchone()
    if row is None:
        raise not_found(f"{what} {entity_id}")
    if row["company_id"] is None and not shared:
        raise forbidden(f"{what} {entity_id} is for every company: the operator's CLI changes it")
    if row["company_id"] not in (caller.company_id, None):
        raise forbidden(f"{what} {entity_id} belongs to another company")
    return row


@dataclass
class Resource:
    path: str
    table: str
    entity: str  # singular, for messages and activity_log
    create_model: type[BaseModel]
    update_model: type[BaseModel]
    out_model: type[BaseModel]
    prepare: Prepare = field(default=lambda conn, caller, values: values)
    deletable: bool = True
    doubts: Doubts | None = None
    # checks a change against the row it changes (raising ApiError), for rules that span the
    # two: an end before a start that only the stored row holds
    consistent: Consistent | None = None
    # rows of no company (every company's, made with the CLI) are listed and read by every
    # company's board, which change only their own: price overrides for every company price
    # their usage too
    shared_rows: bool = False

    def written(self, conn: psycopg.Connection[Any], caller: Principal, row: dict[str, Any],
                request: Request) -> Any:  # fmt: skip
        """The response to a create or an update: the row, with its doubts when told."""
        if self.doubts is None:
            return self.out_model.model_validate(row)
        doubts = self.doubts(conn, caller, row, state(request))
        return self.out_model.model_validate({**row, "warnings": doubts})

    def router(self, tag: str) -> APIRouter:
        router = APIRouter(prefix="/v1", tags=[tag])
        board = Depends(require("board"))
        db = Depends(connection)
        errors = error_responses(401, 403, 404, 409, 422)
        resource = self

        def create(
            body: resource.create_model,  # type: ignore[name-defined]
            request: Request,
            caller: Principal = board,
            conn: psycopg.Connection[Any] = db,
        ) -> Any:
            values = resource.prepare(conn, caller, body.model_dump(exclude_unset=False))
            with conn.transaction():
                row = resource._insert(conn, caller, values)
                audit(
                    conn,
                    caller,
                    f"{resource.entity}.created",
                    resource.entity,
                    row["id"],
                    None,
                    row,
                )
            return resource.written(conn, caller, row, request)

        def list_(
            caller: Principal = board,
            conn: psycopg.Connection[Any] = db,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100,
            offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
        ) -> Any:
            with conn.cursor(row_factory=dict_row) as cur:
                shared = " OR company_id IS NULL" if resource.shared_rows else ""
                rows = cur.execute(
                    f"SELECT * FROM {resource.table} WHERE (company_id = %s{shared}) ORDER BY id "
                    "LIMIT %s OFFSET %s",
                    (caller.company_id, limit, offset),
                ).fetchall()
            return [resource.out_model.model_validate(row) for row in rows]

        def read(
            entity_id: EntityId, caller: Principal = board, conn: psycopg.Connection[Any] = db
        ) -> Any:
            row = fetch(conn, resource.table, caller, entity_id, resource.entity,
                        shared=resource.shared_rows)  # fmt: skip
            return resource.out_model.model_validate(row)

        def update(
            entity_id: EntityId,
            body: resource.update_model,  # type: ignore[name-defined]
            request: Request,
            caller: Principal = board,
            conn: psycopg.Connection[Any] = db,
        ) -> Any:
            changes = resource.prepare(conn, caller, body.model_dump(exclude_unset=True))
            with conn.transaction():
                before = fetch(conn, resource.table, caller, entity_id, resource.entity, True)
                if resource.consistent is not None:
                    resource.consistent(before, changes)
                after = resource._update(conn, entity_id, changes) if changes else before
                audit(
                    conn,
                    caller,
                    f"{resource.entity}.updated",
                    resource.entity,
                    entity_id,
                    before,
                    after,
                )
            return resource.written(conn, caller, after, request)

        def delete(
            entity_id: EntityId, caller: Principal = board, conn: psycopg.Connection[Any] = db
        ) -> Response:
            with conn.transaction():
                before = fetch(conn, resource.table, caller, entity_id, resource.entity, True)
                conn.execute(f"DELETE FROM {resource.table} WHERE id = %s", (entity_id,))
                audit(
                    conn,
                    caller,
                    f"{resource.entity}.deleted",
                    resource.entity,
                    entity_id,
                    before,
                    None,
                )
            return Response(status_code=204)

        name = self.entity.replace(" ", "_")
        out = self.out_model
        router.post(
            self.path,
            status_code=201,
            response_model=out,
            responses=errors,
            operation_id=f"create_{name}",
            summary=f"Create a {self.entity}",
        )(create)
        router.get(
            self.path,
            response_model=list[out],
            responses=error_responses(401, 403, 422),
            operation_id=f"list_{name}s",
            summary=f"List {self.entity}s",
        )(list_)
        router.get(
            f"{self.path}/{{entity_id}}",
            response_model=out,
            responses=errors,
            operation_id=f"read_{name}",
            summary=f"Read a {self.entity}",
        )(read)
        router.patch(
            f"{self.path}/{{entity_id}}",
            response_model=out,
            responses=errors,
            operation_id=f"update_{name}",
            summary=f"Change a {self.entity}",
        )(update)
        if self.deletable:
            router.delete(
                f"{self.path}/{{entity_id}}",
                status_code=204,
                responses=errors,
                operation_id=f"delete_{name}",
                summary=f"Delete a {self.entity}",
            )(delete)
        return router

    def _insert(
        self, conn: psycopg.Connection[Any], caller: Principal, values: dict[str, Any]
    ) -> dict[str, Any]:
        columns = ["company_id", *values]
        params = [caller.company_id, *(_db(v) for v in values.values())]
        try:
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(
                    f"INSERT INTO {self.table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join(['%s'] * len(columns))}) RETURNING *",
                    params,
                ).fetchone()
        except psycopg.errors.UniqueViolation:
            raise conflict(f"such a {self.entity} exists already") from None
        except psycopg.errors.CheckViolation as error:
            raise ApiError(
                422, "invalid", f"{self.entity} is not valid: {error.diag.constraint_name}"
            ) from None
        assert row is not None
        return row

    def _update(
        self, conn: psycopg.Connection[Any], entity_id: int, changes: dict[str, Any]
    ) -> dict[str, Any]:
        assignments = ", ".join(f"{column} = %s" for column in changes)
        try:
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(
                    f"UPDATE {self.table} SET {assignments}, updated_at = now() WHERE id = %s "
                    "RETURNING *",
                    [*(_db(v) for v in changes.values()), entity_id],
                ).fetchone()
        except psycopg.errors.UniqueViolation:
            raise conflict(f"such a {self.entity} exists already") from None
        except psycopg.errors.CheckViolation as error:
            raise ApiError(
                422, "invalid", f"{self.entity} is not valid: {error.diag.constraint_name}"
            ) from None
        assert row is not None
        return row


def _db(value: Any) -> Any:
    return Jsonb(jsonable(value)) if isinstance(value, dict | list) else value
