"""The FastAPI application of the Network Controller's northbound REST API.

``create_app(service)`` declares, from one table (``OPERATIONS``: list, get, put,
delete), a route per operation and collection kind under ``/networking/v1`` (so
``/openapi.json`` documents each, with every status code it can answer), makes
collection names case-insensitive with a small ASGI rewrite, and renders ``ApiError``
as Microsoft's ``{"error": {"code", "message"}}``. Status codes: PUT 201
(created) or 200 (replaced); GET 200; DELETE 200 (deleted) or 404 (absent); 400 bad
body or reference; 404 unknown resource; 409 conflict or still referenced; 412 stale
``If-Match``; 503 when the store cannot answer (a cluster without etcd quorum), with
``Retry-After``: nothing was changed, or, for a write cut off while committing, the
write may have landed (a GET tells); 501 under a collection of the NC that openhnv does
not implement (``controller.northbound.unimplemented``), never a 404 that reads as "not
there yet".

Service calls run in the threadpool, so a request waiting on the store never holds up
the others. ``GET /networking/v1/diagnostics/networkControllerState`` shows the
replica's ``status()`` document (which replica leads, the live replicas, the store).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from openhnv import __version__
from openhnv.controller.errors import ApiError, StoreError, bad_request
from openhnv.controller.northbound.models import MODELS
from openhnv.controller.northbound.paths import (
    BASE_PATH,
    KINDS,
    SINGLETON_COLLECTION,
    SINGLETON_ID,
    TOP_LEVEL,
    child_collections,
)
from openhnv.controller.northbound.patterns import ID_PATTERN
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.unimplemented import (
    FEATURES,
    NOT_IMPLEMENTED,
    not_implemented,
)

Endpoint = Callable[[Request], Awaitable[Response]]
Status = Callable[[], dict[str, Any]]

DIAGNOSTICS_PATH = BASE_PATH + "/diagnostics/networkControllerState"
RETRY_AFTER_SECONDS = 1
METHOD_NOT_ALLOWED = 405
METHOD_ORDER = ("GET", "HEAD", "PUT", "DELETE", "POST", "PATCH", "OPTIONS")

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
RESOURCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["resourceRef", "resourceId", "etag", "instanceId", "properties"],
    "properties": {
        "resourceRef": {"type": "string"},
        "resourceId": {"type": "string"},
        "etag": {"type": "string"},
        "instanceId": {"type": "string"},
        "tags": {"type": "object"},
        "properties": {"type": "object", "required": ["provisioningState"]},
    },
}
COLLECTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["value", "nextLink"],
    "properties": {
        "value": {"type": "array", "items": RESOURCE_SCHEMA},
        "nextLink": {"type": "string"},
    },
}
RESOURCE_ID_SCHEMA: dict[str, Any] = {"type": "string", "pattern": ID_PATTERN}
IF_MATCH: dict[str, Any] = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": 'Optional etag (W/"<guid>") the resource (or its parent) must still have',
    "schema": {"type": "string"},
}
REASONS = {
    401: "No credentials, or invalid ones (WWW-Authenticate names the schemes)",
    403: "The caller's role does not allow this method (reader: GET only)",
    400: "The body, a reference or a path is invalid; the message names the field",
    404: "No such resource (or its parent does not exist)",
    409: "Conflicts with another resource, or is still referenced by one",
    412: "If-Match does not match the current etag",
    503: "The store cannot answer now (no etcd quorum); retry",
    501: "A collection (or a gateway on a virtualServer) of the NC that openhnv does not "
    "implement; the message names the feature",
}
UNIMPLEMENTED_TAG = "not implemented"
UNIMPLEMENTED_METHODS = ("GET", "PUT", "DELETE")


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"description": REASONS[code], "content": _json(ERROR_SCHEMA)} for code in codes}


def _param_name(collection: str) -> str:
    return (collection[:-1] if collection.endswith("s") else collection) + "Id"


class CaseInsensitiveCollections:
    """ASGI middleware: ``/Networking/V1/VirtualNetworks/x`` -> Microsoft's spelling."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            canonical = canonical_path(path)
            if canonical != path:
                scope = dict(scope, path=canonical, raw_path=canonical.encode())
        await self.app(scope, receive, send)


def canonical_path(path: str) -> str:
    """Rewrite the base path and collection names to their canonical casing."""
    parts = path.split("/")
    base = BASE_PATH.strip("/").split("/")
    if len(parts) < 3 or [p.casefold() for p in parts[1:3]] != base:
        return path
    parts[1:3] = base
    allowed: tuple[str, ...] = TOP_LEVEL
    chain: list[str] = []
    for i in range(3, len(parts), 2):
        match = next((c for c in allowed if c.casefold() == parts[i].casefold()), None)
        if match is None:
            break
        parts[i] = match
        chain.append(match)
        allowed = child_collections(tuple(chain))
    return "/".join(parts)


async def _read_body(request: Request) -> object:
    raw = await request.body()
    if not raw.strip():
        raise bad_request("", "the body must be a JSON object with resourceId and properties")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise bad_request("", f"the body is not valid JSON: {err}") from None


def _with_etag(doc: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(doc, status_code=status, headers={"ETag": str(doc["etag"])})


class _Routes:
    """Builds the endpoints of one kind (collection chain)."""

    def __init__(self, service: ControllerService, kind: tuple[str, ...]) -> None:
        self.service = service
        self.kind = kind
        self.params = [_param_name(c) for c in kind]
        if kind == (SINGLETON_COLLECTION,):
            self.params = []

    def template(self, item: bool) -> str:
        parts: list[str] = []
        for i, collection in enumerate(self.kind):
            parts.append(collection)
            last = i == len(self.kind) - 1
            if not last or item:
                parts.append(SINGLETON_ID if not self.params else "{" + self.params[i] + "}")
        return BASE_PATH + "/" + "/".join(parts)

    def ref(self, request: Request, item: bool) -> str:
        parts: list[str] = []
        for i, collection in enumerate(self.kind):
            parts.append(collection)
            if i < len(self.kind) - 1 or item:
                parts.append(
                    SINGLETON_ID if not self.params else request.path_params[self.params[i]]
                )
        return "/" + "/".join(parts)

    def parameters(self, item: bool, if_match: bool = False) -> list[dict[str, Any]]:
        names = self.params if item else self.params[:-1]
        found = [
            {
                "name": n,
                "in": "path",
                "required": True,
                "schema": RESOURCE_ID_SCHEMA,
            }
            for n in names
        ]
        return [*found, IF_MATCH] if if_match else found

    def list(self) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            found = await run_in_threadpool(self.service.list, self.ref(request, item=False))
            return JSONResponse(found)

        return endpoint

    def get(self) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            return _with_etag(await run_in_threadpool(self.service.get, self.ref(request, True)))

        return endpoint

    def put(self) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            body = await _read_body(request)
            created, doc = await run_in_threadpool(
                self.service.put,
                self.ref(request, item=True),
                body,
                request.headers.get("if-match"),
            )
            return _with_etag(doc, 201 if created else 200)

        return endpoint

    def delete(self) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            await run_in_threadpool(
                self.service.delete, self.ref(request, item=True), request.headers.get("if-match")
            )
            return Response(status_code=200)

        return endpoint

    def endpoint(self, verb: str) -> Endpoint:
        builders = {"list": self.list, "get": self.get, "put": self.put, "delete": self.delete}
        return builders[verb]()


def _body_schema(kind: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["properties"],
        "properties": {
            "resourceId": {
                **RESOURCE_ID_SCHEMA,
                "description": "Optional; when given, the path's id (in any casing)",
            },
            "tags": {"type": "object"},
            "properties": {"$ref": f"#/components/schemas/{MODELS[kind].__name__}"},
        },
    }


@dataclass(frozen=True, slots=True)
class Operation:
    """One route of every kind: its method, whether on an item or the collection, and
    what ``/openapi.json`` says of it (``answers``: status -> description and schema)."""

    verb: str  # list, get, put, delete: the endpoint, and the operationId's prefix
    method: str
    item: bool
    summary: str  # "{name}" is the kind, e.g. virtualNetworks/subnets
    answers: dict[int, tuple[str, dict[str, Any] | None]]
    errors: tuple[int, ...]
    if_match: bool = False
    body: bool = False  # takes a resource body (the kind's model)
    on_singleton: bool = True  # virtualNetworkManager/configuration has it too


OPERATIONS = (
    Operation(
        "list",
        "GET",
        False,
        "List {name}",
        {200: ("The collection", COLLECTION_SCHEMA)},
        (400, 404, 503),
    ),
    Operation(
        "get",
        "GET",
        True,
        "Get one of {name}",
        {200: ("The resource", RESOURCE_SCHEMA)},
        (400, 404, 503),
    ),
    Operation(
        "put",
        "PUT",
        True,
        "Create or replace one of {name}",
        {200: ("Replaced (or unchanged)", RESOURCE_SCHEMA), 201: ("Created", RESOURCE_SCHEMA)},
        (400, 404, 409, 412, 503),
        if_match=True,
        body=True,
    ),
    Operation(
        "delete",
        "DELETE",
        True,
        "Delete one of {name}",
        {200: ("Deleted", None)},
        (400, 404, 409, 412, 503),
        if_match=True,
        on_singleton=False,
    ),
)


def _add_route(app: FastAPI, routes: _Routes, op: Operation) -> None:
    responses: dict[int | str, dict[str, Any]] = {
        status: {"description": text}
        if schema is None
        else {"description": text, "content": _json(schema)}
        for status, (text, schema) in op.answers.items()
    }
    extra: dict[str, Any] = {"parameters": routes.parameters(op.item, if_match=op.if_match)}
    if op.body:
        extra["requestBody"] = {"required": True, "content": _json(_body_schema(routes.kind))}
    plain = all(schema is None for _, schema in op.answers.values())
    errors = op.errors
    if op.body and routes.kind == ("gateways",):
        errors += (NOT_IMPLEMENTED,)  # a body naming a virtualServer
    app.add_api_route(
        routes.template(item=op.item),
        routes.endpoint(op.verb),
        methods=[op.method],
        summary=op.summary.format(name="/".join(routes.kind)),
        operation_id=f"{op.verb}_{'_'.join(routes.kind)}",
        tags=[routes.kind[0]],
        responses={**responses, **_errors(*errors)},
        openapi_extra=extra,
        response_class=Response if plain else JSONResponse,
    )


async def _not_implemented(request: Request) -> Response:
    """501 naming the feature (every route of ``_add_unimplemented`` is such a path)."""
    missing = not_implemented(request.url.path)
    if missing is None:  # not reached: the route's path is one of FEATURES
        raise RuntimeError(f"{request.url.path} is not an unimplemented collection")
    return JSONResponse(missing.as_body(), status_code=missing.status)


def _add_unimplemented(app: FastAPI) -> None:
    """The NC's collections openhnv does not implement, declared with their one answer
    (501); deeper paths under them get it from the 404 handler."""
    item = [{"name": "resourceId", "in": "path", "required": True,
             "schema": {"type": "string", "pattern": ID_PATTERN}}]  # fmt: skip
    for collection, feature in FEATURES.items():
        slug = collection.replace("/", "_")
        base = f"{BASE_PATH}/{collection}"
        for path, methods, parameters in (
            (base, ("GET",), []),
            (base + "/{resourceId}", UNIMPLEMENTED_METHODS, item),
        ):
            for method in methods:
                suffix = "item" if parameters else "collection"
                app.add_api_route(
                    path,
                    _not_implemented,
                    methods=[method],
                    summary=f"{feature}: not implemented by openhnv",
                    operation_id=f"unimplemented_{method.lower()}_{suffix}_{slug}",
                    tags=[UNIMPLEMENTED_TAG],
                    responses=_errors(NOT_IMPLEMENTED),
                    openapi_extra={"parameters": parameters},
                    response_class=JSONResponse,
                )


def _add_diagnostics(app: FastAPI, status: Status | None) -> None:
    """``GET .../diagnostics/networkControllerState``: the replica's ``status()``."""

    async def diagnostics(request: Request) -> Response:
        found = await run_in_threadpool(status) if status is not None else {"properties": {}}
        return JSONResponse(found)

    app.add_api_route(
        DIAGNOSTICS_PATH,
        diagnostics,
        methods=["GET"],
        summary="Which controller replica leads, the live replicas, the store",
        operation_id="get_network_controller_state",
        tags=["diagnostics"],
        responses={200: {"description": "The controller's state", "content": _json({})}},
    )


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as Microsoft's ``{"error": {"code", "message"}}``; a store that cannot
    answer as 503 with ``Retry-After``."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, err: ApiError) -> Response:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if err.status == 503 else None
        return JSONResponse(err.as_body(), status_code=err.status, headers=headers)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, err: StoreError) -> Response:
        body = {"error": {"code": "ServiceUnavailable", "message": f"the store: {err}"}}
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return JSONResponse(body, status_code=503, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException) -> Response:
        missing = not_implemented(request.url.path) if err.status_code == 404 else None
        if missing is not None:  # a 404 would read as "not there yet" to Microsoft's client
            return JSONResponse(missing.as_body(), status_code=missing.status)
        code = {404: "ResourceNotFound", 405: "MethodNotAllowed"}.get(err.status_code, "Error")
        message = f"{request.method} {request.url.path}: {err.detail}"
        headers = dict(err.headers or {})
        if err.status_code == METHOD_NOT_ALLOWED:  # RFC 9110 15.5.6: every method of the path
            headers["Allow"] = ", ".join(allowed_methods(app, request.scope))
        return JSONResponse(
            {"error": {"code": code, "message": message}},
            status_code=err.status_code,
            headers=headers,
        )


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """The methods some route of ``app`` serves at the request's path (FastAPI has a route
    per method, and Starlette's 405 names only the first route's)."""
    found: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**scope, "method": "GET"})
        if match != Match.NONE and isinstance(route, BaseRoute):
            found |= set(getattr(route, "methods", None) or ())
    return sorted(found, key=METHOD_ORDER.index)


@dataclass(frozen=True, slots=True)
class Security:
    """How the listener authenticates (``openhnv.api.auth``), for ``/openapi.json``."""

    x509: bool = False
    tokens: bool = False

    def schemes(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        if self.tokens:
            found["bearerToken"] = {
                "type": "http",
                "scheme": "bearer",
                "description": "A token of the listener's --tokens file (hnv pki token)",
            }
        if self.x509:
            found["clientCertificate"] = {
                "type": "mutualTLS",
                "description": "A certificate of the --client-ca; role from its subject's OU",
            }
        return found


def _secure(schema: dict[str, Any], security: Security) -> None:
    """Declare the security schemes, and 401 and 403 on every operation."""
    schemes = security.schemes()
    if not schemes:
        return
    schema["components"]["securitySchemes"] = schemes
    schema["security"] = [{name: []} for name in schemes]
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            operation.setdefault("responses", {}).update(
                {str(code): found for code, found in _errors(401, 403).items()}
            )


def _with_models(app: FastAPI, security: Security) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` with the resource models' schemas among the components, and the
    listener's security."""
    original_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original_openapi()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in MODELS.values():
                found = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(found.pop("$defs", {}))
                components[model.__name__] = found
            _secure(schema, security)
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


def create_app(
    service: ControllerService, *, status: Status | None = None, security: Security = Security()
) -> FastAPI:
    """The REST application over ``service``: every operation of every kind; ``status``
    feeds the diagnostics path; ``security`` is what ``/openapi.json`` declares (the
    listener's ``openhnv.api.auth.Authenticate`` enforces it)."""
    app = FastAPI(
        title="openhnv Network Controller",
        version=__version__,
        description="Microsoft Network Controller northbound REST API (HNV v2 subset).",
    )
    for kind in KINDS:
        routes = _Routes(service, kind)
        for op in OPERATIONS:
            if op.on_singleton or kind != (SINGLETON_COLLECTION,):
                _add_route(app, routes, op)
    _add_diagnostics(app, status)
    _add_unimplemented(app)
    _add_error_handlers(app)
    app.openapi = _with_models(app, security)  # type: ignore[method-assign]
    app.add_middleware(CaseInsensitiveCollections)
    return app
