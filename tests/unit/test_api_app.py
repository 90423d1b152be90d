"""The REST app in-process: status codes, headers, error bodies, paths, the README JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openhnv.api.app import canonical_path, create_app
from openhnv.controller.errors import StoreError
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore

FIGURE8 = Path(__file__).resolve().parents[2] / "examples" / "figure8"
BASE = "/networking/v1"
MAC_POOL = {"startMacAddress": "00-1D-D8-07-00-00", "endMacAddress": "00-1D-D8-07-00-FF"}


def figure8_files() -> list[Path]:
    return sorted(FIGURE8.glob("*.json"))


def url_of(file: Path) -> str:
    _, collection, resource_id = file.stem.split("-", 2)
    return f"{BASE}/{collection}/{resource_id}"


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(ControllerService(SqliteStore(":memory:")))) as test_client:
        yield test_client


@pytest.fixture
def figure8(client: TestClient) -> TestClient:
    for file in figure8_files():
        response = client.put(
            url_of(file), content=file.read_bytes(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 201, response.text
    return client


def test_exactly_the_readme_bodies_are_accepted(client: TestClient) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    files = figure8_files()
    assert len(files) == 11
    for file in files:
        assert f"examples/figure8/{file.name}" in doc, file.name
        response = client.put(url_of(file), content=file.read_bytes())
        assert response.status_code == 201, response.text
        body = json.loads(file.read_bytes())
        assert response.json()["resourceId"] == body["resourceId"]
        assert response.headers["ETag"] == response.json()["etag"]


def test_put_replace_is_200_and_identical_body_keeps_etag(figure8: TestClient) -> None:
    file = figure8_files()[5]
    first = figure8.get(url_of(file))
    again = figure8.put(url_of(file), content=file.read_bytes())
    assert again.status_code == 200
    assert again.headers["ETag"] == first.headers["ETag"]


def test_get_collection_and_case_insensitive_paths(figure8: TestClient) -> None:
    listing = figure8.get("/Networking/V1/NETWORKINTERFACES")
    assert listing.status_code == 200
    assert listing.json()["nextLink"] == ""
    assert len(listing.json()["value"]) == 4
    child = figure8.get("/networking/v1/virtualnetworks/FABRIKAM/subnets/Subnet1")
    assert child.status_code == 200
    assert child.json()["resourceRef"] == "/virtualNetworks/Fabrikam/subnets/subnet1"
    assert child.json()["properties"]["virtualSubnetId"] == 6001
    assert child.headers["ETag"] == figure8.get(f"{BASE}/virtualNetworks/Fabrikam").headers["ETag"]
    pools = figure8.get(f"{BASE}/logicalNetworks/hnvpa/subnets/PA-SUBNET-1/ipPools")
    assert [p["resourceId"] for p in pools.json()["value"]] == ["pool1"]


def error(response: Any, status: int, code: str, *words: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    for word in words:
        assert word in message
    return message


def test_error_bodies(figure8: TestClient) -> None:
    error(figure8.get(f"{BASE}/servers/none"), 404, "ResourceNotFound", "/servers/none")
    error(figure8.get(f"{BASE}/noSuchThing"), 404, "ResourceNotFound")
    error(
        figure8.put(f"{BASE}/credentials/c", content=b"{not json"),
        400,
        "InvalidInput",
        "not valid JSON",
    )
    error(figure8.put(f"{BASE}/credentials/c", content=b""), 400, "InvalidInput", "JSON object")
    error(figure8.put(f"{BASE}/credentials/c", json=[1]), 400, "InvalidInput", "JSON object")
    error(
        figure8.put(f"{BASE}/credentials/c", json={"properties": {"type": "Kerberos"}}),
        400,
        "InvalidInput",
        "properties.type",
        "Kerberos",
    )
    error(figure8.delete(f"{BASE}/servers/host1"), 409, "ResourceInUse", "/networkInterfaces/")
    error(
        figure8.put(
            f"{BASE}/virtualNetworks/Contoso",
            content=(FIGURE8 / "06-virtualNetworks-Contoso.json").read_bytes(),
            headers={"If-Match": 'W/"old"'},
        ),
        412,
        "PreconditionFailed",
    )
    error(figure8.post(f"{BASE}/servers/host1"), 405, "MethodNotAllowed")


def test_nic_address_error_names_the_field(figure8: TestClient) -> None:
    body = json.loads((FIGURE8 / "08-networkInterfaces-Contoso-SQL.json").read_text())
    body["resourceId"] = "Contoso-New"
    body["properties"]["privateMacAddress"] = "001DD8079999"
    body["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] = "10.1.1.0"
    message = error(
        figure8.put(f"{BASE}/networkInterfaces/Contoso-New", json=body), 400, "InvalidInput"
    )
    assert message == (
        "properties.ipConfigurations[0].properties.privateIPAddress: "
        "10.1.1.0 is the network address of subnet 10.1.1.0/24"
    )


def test_delete_is_200_then_404(figure8: TestClient) -> None:
    url = f"{BASE}/networkInterfaces/Fabrikam-Web"
    etag = figure8.get(url).headers["ETag"]
    assert figure8.delete(url, headers={"If-Match": etag}).status_code == 200
    assert figure8.get(url).status_code == 404
    error(figure8.delete(url), 404, "ResourceNotFound")


def test_child_put_and_delete_at_their_own_uri(figure8: TestClient) -> None:
    url = f"{BASE}/accessControlLists/web/aclRules/allow-sql"
    assert figure8.put(f"{BASE}/accessControlLists/web", json={"properties": {}}).status_code == 201
    rule = {
        "resourceId": "allow-sql",
        "properties": {
            "protocol": "TCP",
            "sourcePortRange": "0-65535",
            "destinationPortRange": "1433",
            "sourceAddressPrefix": "10.1.1.12",
            "destinationAddressPrefix": "10.1.1.11",
            "action": "Allow",
            "priority": "100",
            "type": "Inbound",
            "logging": "Enabled",
        },
    }
    created = figure8.put(url, json=rule)
    assert created.status_code == 201
    assert created.json()["properties"]["priority"] == 100
    assert figure8.put(url, json=rule).status_code == 200
    assert figure8.delete(url).status_code == 200
    assert figure8.get(f"{BASE}/accessControlLists/web").json()["properties"]["aclRules"] == []


def test_openapi_declares_every_status(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    put = spec["paths"][f"{BASE}/virtualNetworks/{{virtualNetworkId}}/subnets/{{subnetId}}"]["put"]
    assert {"200", "201", "400", "404", "409", "412"} <= set(put["responses"])
    delete = spec["paths"][f"{BASE}/servers/{{serverId}}"]["delete"]
    assert {"200", "404", "409", "412"} <= set(delete["responses"])
    assert "AclRuleProperties" in spec["components"]["schemas"]
    assert f"{BASE}/virtualNetworkManager/configuration" in spec["paths"]


def test_canonical_path() -> None:
    assert canonical_path("/NETWORKING/v1/virtualnetworks/Contoso/SUBNETS/Web") == (
        "/networking/v1/virtualNetworks/Contoso/subnets/Web"
    )
    assert canonical_path("/docs") == "/docs"


def test_singleton_routes(client: TestClient) -> None:
    listing = client.get(f"{BASE}/virtualNetworkManager").json()["value"]
    assert [d["resourceId"] for d in listing] == ["configuration"]
    put = client.put(
        f"{BASE}/VirtualNetworkManager/configuration",
        json={"properties": {"networkVirtualizationProtocol": "Nvgre"}},
    )
    assert put.status_code == 200
    assert put.json()["properties"]["networkVirtualizationProtocol"] == "Nvgre"
    error(client.delete(f"{BASE}/virtualNetworkManager/configuration"), 405, "MethodNotAllowed")
    error(client.get(f"{BASE}/virtualNetworkManager/other"), 404, "ResourceNotFound")


def test_if_match_is_declared(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    put = spec["paths"][f"{BASE}/networkInterfaces/{{networkInterfaceId}}"]["put"]
    assert {"name": "If-Match", "in": "header"}.items() <= next(
        p for p in put["parameters"] if p["name"] == "If-Match"
    ).items()


class LosableStore(SqliteStore):
    """A store whose commits fail, once ``lost``, as etcd's do without quorum."""

    lost = False

    def commit(self, *args: Any, **kwargs: Any) -> int:
        if self.lost:
            raise StoreError("etcd: no quorum (test)")
        return super().commit(*args, **kwargs)


def test_a_store_that_cannot_answer_is_503_with_retry_after_and_changes_nothing() -> None:
    store = LosableStore(":memory:")
    service = ControllerService(store)
    store.lost = True
    with TestClient(create_app(service, status=lambda: {"properties": {"leader": None}})) as http:
        answer = http.put(f"{BASE}/macPools/p", json={"properties": MAC_POOL})
        assert answer.status_code == HTTPStatus.SERVICE_UNAVAILABLE
        assert answer.headers["Retry-After"] == "1"
        assert answer.json()["error"]["code"] == "ServiceUnavailable"
        assert http.get(f"{BASE}/macPools/p").status_code == HTTPStatus.NOT_FOUND
        state = http.get(f"{BASE}/diagnostics/networkControllerState")
        assert state.json() == {"properties": {"leader": None}}
