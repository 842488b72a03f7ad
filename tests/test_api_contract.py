"""The OpenAPI document is the contract: schemathesis generates requests for every operation
from it and checks that no answer is a server error and every answer (status, content type,
body) is one the document describes."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from tests.api_helpers import Keys

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
INGESTION = ("/v1/usage-events", "/v1/tool-calls", "/v1/heartbeat-runs", "/v1/attribution-hints")


@pytest.fixture(scope="module")
def served(pg_server_url, template_db, tmp_path_factory):
    """One database and app for the module: schemathesis runs many cases per operation."""
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    name = f"tally_contract_{uuid.uuid4().hex[:8]}"
    admin = make_url(pg_server_url).set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    url = str(make_url(pg_server_url).set(database=name))
    warehouse = tmp_path_factory.mktemp("contract") / "warehouse.duckdb"
    app = create_app(url, f"duckdb://{warehouse}")
    with TestClient(app):  # runs the lifespan: the pool and state the routes use
        keys = Keys.create(admin.set(database=name).render_as_string(False))
        yield app, keys
    with psycopg.connect(admin.render_as_string(False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_document_is_complete():
    document = create_app("postgresql+psycopg://unused/unused").openapi()
    paths = document["paths"]
    for path in INGESTION:
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body["properties"]["records"]["maxItems"] == 1000
        reference = body["properties"]["records"]["items"]["$ref"].rsplit("/", 1)[-1]
        assert reference in document["components"]["schemas"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            if path != "/health":
                assert {"401", "403", "503"} <= set(operation["responses"]), (method, path)
                assert operation["responses"]["401"]["content"]["application/json"]["schema"][
                    "$ref"
                ].endswith("/ErrorBody")


def check_operation(operation: schemathesis.APIOperation, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def conforms(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    conforms()


@pytest.mark.slow
def test_every_operation_conforms(served):
    app, keys = served
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    for operation in operations:
        key = keys.service if operation.path in INGESTION else keys.board
        check_operation(operation, {"Authorization": f"Bearer {key}"})
