"""A real ``hnv controller`` over TLS: certificates, tokens, roles, the audit log.

Every route of the application (read from ``create_app``, so a new route is covered the
day it is added) refuses a request without credentials; a reader's token reads and is
refused writes; the admin certificate and token write; a client certificate from
another CA gets no connection; every mutating request is in the audit log.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from openhnv.api import pki
from openhnv.api.app import Security, create_app
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore
from openhnv.lab.access import ApiAccess
from openhnv.testing.processes import ControllerProcess

CREDENTIAL = {"properties": {"type": "X509Certificate", "value": "AB12"}}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    directory = tmp_path_factory.mktemp("nc")
    access = ApiAccess.create(directory / "pki")
    audit = directory / "audit.jsonl"
    with ControllerProcess(directory / "nc.db", "--audit-log", str(audit), access=access) as nc:
        yield nc


def every_route() -> list[tuple[str, str]]:
    app = create_app(ControllerService(SqliteStore(":memory:")), security=Security(True, True))
    found = []
    for route in app.routes:
        if isinstance(route, Route) and route.methods:
            path = route.path.replace("{", "").replace("}", "")
            found += [(method, path) for method in sorted(route.methods)]
    return found


def _anonymous(nc: ControllerProcess) -> httpx.Client:
    assert nc.access is not None
    context = nc.access.ssl_context(certificate=False)
    return httpx.Client(base_url=nc.url, verify=context, timeout=10.0)


def test_no_credentials_no_route(secured: ControllerProcess) -> None:
    routes = every_route()
    assert len(routes) > 50
    with _anonymous(secured) as client:
        for method, path in routes:
            answer = client.request(method, path, json=CREDENTIAL)
            assert answer.status_code == 401, (method, path, answer.text)
            assert "Bearer" in answer.headers["www-authenticate"]


def test_tokens_and_certificates_by_role(secured: ControllerProcess) -> None:
    access = secured.access
    assert access is not None
    path = "/networking/v1/credentials/live"
    with _anonymous(secured) as client:
        as_reader = {"Authorization": f"Bearer {access.reader_token}"}
        as_admin = {"Authorization": f"Bearer {access.admin_token}"}
        assert client.put(path, json=CREDENTIAL, headers=as_reader).status_code == 403
        assert client.put(path, json=CREDENTIAL, headers=as_admin).status_code == 201
        assert client.get(path, headers=as_reader).status_code == 200
        assert client.delete(path, headers=as_reader).status_code == 403
    with secured.http() as admin:  # the admin certificate
        assert admin.put(secured.url + path, json=CREDENTIAL).status_code == 200
        assert admin.delete(secured.url + path).status_code == 200
    audit = (secured.db.parent / "audit.jsonl").read_text()
    lines = [json.loads(x) for x in audit.splitlines()]
    seen = [(e["who"], e["method"], e["status"]) for e in lines if e["path"] == path]
    assert seen == [
        ("lab-reader", "PUT", 403),
        ("lab-admin", "PUT", 201),
        ("lab-reader", "DELETE", 403),
        ("lab-admin", "PUT", 200),
        ("lab-admin", "DELETE", 200),
    ]
    assert "openhnv.audit: audit" in secured.output()  # and in the controller's log


def test_a_certificate_of_another_ca_gets_no_connection(
    secured: ControllerProcess, tmp_path: Path
) -> None:
    pki.init_api_ca(tmp_path)
    cert, key = pki.issue_api(tmp_path, "mallory", "admin")
    assert secured.access is not None
    context = ssl.create_default_context(cafile=str(secured.access.ca))
    context.load_cert_chain(cert, key)
    client = httpx.Client(base_url=secured.url, verify=context, timeout=10.0)
    try:
        with pytest.raises(httpx.TransportError):
            client.get("/networking/v1/credentials")
    finally:
        client.close()


def test_plain_http_gets_no_answer(secured: ControllerProcess) -> None:
    plain = secured.url.replace("https://", "http://")
    with pytest.raises(httpx.TransportError):
        httpx.get(plain + "/networking/v1/credentials", timeout=10.0)
