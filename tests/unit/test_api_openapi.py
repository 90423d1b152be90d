"""schemathesis against /openapi.json in-process: no 500s, no undeclared status codes.

The operations tagged "not implemented" (the NC's collections openhnv does not
implement) declare one answer, 501: there it is the answer, not a server error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from openhnv.api.app import UNIMPLEMENTED_TAG, create_app
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore

FIGURE8 = Path(__file__).resolve().parents[2] / "examples" / "figure8"


def _app() -> object:
    service = ControllerService(SqliteStore(":memory:"))
    for file in sorted(FIGURE8.glob("*.json")):
        _, collection, resource_id = file.stem.split("-", 2)
        service.put(f"/{collection}/{resource_id}", json.loads(file.read_text()))
    return create_app(service)


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi(case: schemathesis.Case[Any]) -> None:
    unimplemented = UNIMPLEMENTED_TAG in (case.operation.tags or ())
    case.call_and_validate(
        checks=[
            *(() if unimplemented else (not_a_server_error,)),
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ]
    )
