"""The auth layer in-process: who may call what, 401 and 403, the audit log, the token file.

Client certificates reach the layer as the ASGI TLS extension (``openhnv.api.tls`` puts
them there after the handshake verified them); here a wrapper adds them to the scope.
The real TLS listener is tested in tests/functional/test_api_auth_live.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from openhnv.api import pki
from openhnv.api.app import Security, create_app
from openhnv.api.auth import (
    ANONYMOUS,
    AuditLog,
    Authenticate,
    AuthError,
    Principal,
    TokenBook,
    certificate_principal,
)
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore

CREDENTIAL = {"properties": {"type": "X509Certificate", "value": "AB12"}}


class WithCertificate:
    """What ``ClientCertProtocol`` does for a connection that presented ``pem``."""

    def __init__(self, app: ASGIApp, pem: str | None) -> None:
        self.app, self.pem = app, pem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.pem is not None:
            scope = {**scope, "extensions": {"tls": {"client_cert_chain": [self.pem]}}}
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    pki.init_api_ca(directory)
    pki.issue_api(directory, "alice", "admin")
    pki.issue_api(directory, "bob", "reader")
    pki.issue_api(directory, "nc.example", pki.API_SERVER, ips=["10.0.0.11"])
    return directory


@pytest.fixture
def tokens(tmp_path: Path) -> tuple[Path, str, str]:
    path = tmp_path / "tokens.json"
    admin = pki.new_token(path, "deploy", "admin")
    reader = pki.new_token(path, "monitor", "reader")
    return path, admin, reader


def _service() -> ControllerService:
    return ControllerService(SqliteStore(":memory:"))


@pytest.fixture
def secured(tokens: tuple[Path, str, str], tmp_path: Path) -> Iterator[tuple[Authenticate, Path]]:
    audit_path = tmp_path / "audit.jsonl"
    audit = AuditLog(audit_path)
    app = create_app(_service(), security=Security(x509=True, tokens=True))
    yield Authenticate(app, x509=True, tokens=TokenBook(tokens[0]), audit=audit), audit_path
    audit.close()


def _client(app: ASGIApp, pem: str | None = None) -> TestClient:
    return TestClient(WithCertificate(app, pem), base_url="https://testserver")


def _routes(app: Authenticate) -> list[tuple[str, str]]:
    """Every (method, path) the application serves, ids filled in."""
    inner = app.app
    found = []
    for route in getattr(inner, "routes", []):
        if isinstance(route, Route) and route.methods:
            path = route.path.replace("{", "").replace("}", "")
            found += [(method, path) for method in sorted(route.methods)]
    return found


def test_without_credentials_every_route_is_401(secured: tuple[Authenticate, Path]) -> None:
    app, _ = secured
    routes = _routes(app)
    assert len(routes) > 50
    assert ("GET", "/openapi.json") in routes
    client = _client(app)
    for method, path in [*routes, ("GET", "/no/such/path"), ("POST", "/networking/v1/x")]:
        answer = client.request(method, path, json=CREDENTIAL)
        assert answer.status_code == 401, (method, path)
        assert answer.headers["www-authenticate"] == 'Bearer realm="openhnv", X509 realm="openhnv"'
        if method != "HEAD":
            assert answer.json()["error"]["code"] == "Unauthorized"


def test_tokens_by_role(secured: tuple[Authenticate, Path], tokens: tuple[Path, str, str]) -> None:
    app, _ = secured
    _, admin, reader = tokens
    client = _client(app)
    as_admin = {"Authorization": f"Bearer {admin}"}
    as_reader = {"Authorization": f"bearer {reader}"}  # the scheme is case-insensitive
    assert (
        client.put("/networking/v1/credentials/c1", json=CREDENTIAL, headers=as_admin).status_code
        == 201
    )
    assert client.get("/networking/v1/credentials/c1", headers=as_reader).status_code == 200
    refused = client.put("/networking/v1/credentials/c1", json=CREDENTIAL, headers=as_reader)
    assert refused.status_code == 403
    assert refused.json()["error"] == {
        "code": "Forbidden",
        "message": "monitor (reader) may not PUT",
    }
    assert client.delete("/networking/v1/credentials/c1", headers=as_reader).status_code == 403
    assert client.get("/networking/v1/credentials/c1", headers=as_reader).status_code == 200
    assert client.delete("/networking/v1/credentials/c1", headers=as_admin).status_code == 200


def test_bad_tokens_and_schemes_are_401(
    secured: tuple[Authenticate, Path], tokens: tuple[Path, str, str]
) -> None:
    app, _ = secured
    client = _client(app)
    wrong = client.get("/networking/v1/credentials", headers={"Authorization": "Bearer hnv_x"})
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    tokens_file = tokens[0].read_text()
    digest = json.loads(tokens_file)["tokens"][0]["sha256"]
    as_hash = client.get(
        "/networking/v1/credentials", headers={"Authorization": f"Bearer {digest}"}
    )
    assert as_hash.status_code == 401  # the file's content is not a credential
    basic = client.get("/networking/v1/credentials", headers={"Authorization": "Basic YTpi"})
    assert basic.status_code == 401


def test_certificates_by_role(secured: tuple[Authenticate, Path], issued: Path) -> None:
    app, _ = secured
    alice = _client(app, (issued / "alice-cert.pem").read_text())
    bob = _client(app, (issued / "bob-cert.pem").read_text())
    server = _client(app, (issued / "nc.example-cert.pem").read_text())
    assert alice.put("/networking/v1/credentials/c2", json=CREDENTIAL).status_code == 201
    assert bob.get("/networking/v1/credentials/c2").status_code == 200
    assert bob.delete("/networking/v1/credentials/c2").status_code == 403
    # a certificate of the CA whose subject names no role may do nothing
    assert server.get("/networking/v1/credentials").status_code == 403
    # an Authorization header that is present must be valid, certificate or not
    answer = alice.get("/networking/v1/credentials", headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 401


def test_a_certificate_is_ignored_where_x509_is_not_accepted(
    tokens: tuple[Path, str, str], issued: Path
) -> None:
    app = Authenticate(create_app(_service()), tokens=TokenBook(tokens[0]))
    alice = _client(app, (issued / "alice-cert.pem").read_text())
    answer = alice.get("/networking/v1/credentials")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="openhnv"'


def test_open_access_is_an_anonymous_admin() -> None:
    client = _client(Authenticate(create_app(_service()), open_access=True))
    assert client.put("/networking/v1/credentials/c3", json=CREDENTIAL).status_code == 201
    assert ANONYMOUS.may("DELETE")


def test_the_audit_log_has_every_mutating_request(
    secured: tuple[Authenticate, Path], tokens: tuple[Path, str, str], issued: Path
) -> None:
    app, audit_path = secured
    _, admin, reader = tokens
    client = _client(app)
    alice = _client(app, (issued / "alice-cert.pem").read_text())
    client.put("/networking/v1/credentials/a", json=CREDENTIAL)  # no credentials: 401
    client.put("/networking/v1/credentials/a", json=CREDENTIAL,
               headers={"Authorization": f"Bearer {reader}"})  # fmt: skip
    client.put("/networking/v1/credentials/a", json=CREDENTIAL,
               headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
    client.get("/networking/v1/credentials/a", headers={"Authorization": f"Bearer {admin}"})
    alice.delete("/networking/v1/credentials/a")
    alice.post("/networking/v1/credentials/a", json=CREDENTIAL)
    lines = [json.loads(line) for line in audit_path.read_text().splitlines()]
    seen = [(e["who"], e["via"], e["role"], e["method"], e["status"]) for e in lines]
    assert seen == [
        (None, None, None, "PUT", 401),
        ("monitor", "token", "reader", "PUT", 403),
        ("deploy", "token", "admin", "PUT", 201),
        ("alice", "x509", "admin", "DELETE", 200),
        ("alice", "x509", "admin", "POST", 405),
    ]
    assert all(e["path"] == "/networking/v1/credentials/a" and e["time"] for e in lines)


def test_the_token_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    first = pki.new_token(path, "one", "admin")
    now = [0.0]
    book = TokenBook(path, clock=lambda: now[0])
    assert book.find(first) == Principal("one", "admin", "token")
    second = pki.new_token(path, "two", "reader")
    os.utime(path, ns=(1, 1))  # a new mtime even within the file system's resolution
    assert book.find(second) is None  # not looked at again within a second
    now[0] = 2.0
    assert book.find(second) == Principal("two", "reader", "token")
    path.write_text("{not json")
    now[0] = 4.0
    assert book.find(first) is not None  # a broken file keeps the tokens read before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", "expected"),
        ('{"tokens": [{"name": "", "role": "admin", "sha256": "' + "0" * 64 + '"}]}', "name"),
        ('{"tokens": [{"name": "x", "role": "root", "sha256": "' + "0" * 64 + '"}]}', "role"),
        ('{"tokens": [{"name": "x", "role": "admin", "sha256": "abc"}]}', "sha256"),
    ],
)
def test_a_bad_token_file_is_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(content)
    with pytest.raises(AuthError, match=message):
        TokenBook(path)
    with pytest.raises(AuthError, match="No such file"):
        TokenBook(tmp_path / "absent.json")


def test_certificate_principal(issued: Path) -> None:
    alice = certificate_principal((issued / "alice-cert.pem").read_text())
    assert alice == Principal("alice", "admin", "x509")
    bob = certificate_principal((issued / "bob-cert.pem").read_text())
    assert (bob.role, bob.may("GET"), bob.may("HEAD"), bob.may("PUT")) == (
        "reader",
        True,
        True,
        False,
    )
    assert certificate_principal((issued / "nc.example-cert.pem").read_text()).role is None
