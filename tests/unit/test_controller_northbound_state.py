"""State: lookups by case-insensitive path and the NIC indexes kept by set/remove."""

from __future__ import annotations

from openhnv.controller.northbound.paths import parse_path
from openhnv.controller.northbound.state import State


def nic(resource_id: str, mac: str, address: str, vnet: str = "Contoso") -> dict[str, object]:
    return {
        "resourceId": resource_id,
        "instanceId": "i",
        "etag": 'W/"e"',
        "properties": {
            "privateMacAddress": mac,
            "ipConfigurations": [
                {
                    "resourceId": "ipconfig1",
                    "instanceId": "j",
                    "properties": {
                        "privateIPAddress": address,
                        "subnet": {"resourceRef": f"/virtualNetworks/{vnet}/subnets/s"},
                    },
                }
            ],
        },
    }


def test_indexes_follow_set_and_remove() -> None:
    state = State()
    state.set("/networkinterfaces/sql", nic("SQL", "001DD8070001", "10.1.1.11"))
    state.set("/networkinterfaces/web", nic("Web", "001DD8070002", "10.1.1.11", "Fabrikam"))
    assert state.macs == {
        "001DD8070001": "/networkInterfaces/SQL",
        "001DD8070002": "/networkInterfaces/Web",
    }
    assert state.addresses["/virtualnetworks/contoso"] == {"10.1.1.11": "/networkInterfaces/SQL"}
    state.set("/networkinterfaces/sql", nic("SQL", "001DD8070003", "10.1.1.12"))
    assert "001DD8070001" not in state.macs
    assert state.addresses["/virtualnetworks/contoso"] == {"10.1.1.12": "/networkInterfaces/SQL"}
    state.remove("/networkinterfaces/sql")
    assert state.addresses["/virtualnetworks/contoso"] == {}
    assert [p.ref for p, _ in state.all("networkInterfaces")] == ["/networkInterfaces/Web"]


def test_resolve_and_canonical() -> None:
    state = State()
    state.set("/networkinterfaces/sql", nic("SQL", "001DD8070001", "10.1.1.11"))
    path = parse_path("/NETWORKINTERFACES/sql/ipconfigurations/IPCONFIG1")
    child = state.resolve(path)
    assert child is not None
    assert child["resourceId"] == "ipconfig1"
    assert state.canonical(path).ref == "/networkInterfaces/SQL/ipConfigurations/ipconfig1"
    assert state.resolve(parse_path("/networkInterfaces/sql/ipConfigurations/none")) is None
    assert state.resolve(parse_path("/networkInterfaces/none")) is None


def test_a_copy_does_not_follow_later_changes() -> None:
    state = State()
    state.set("/networkinterfaces/a", nic("a", "001DD8070001", "10.0.0.1"))
    assert [p.ref for p, _ in state.all("networkInterfaces")] == ["/networkInterfaces/a"]
    state.configuration["/networkinterfaces/a"] = {"status": "Success"}
    copied = state.copy()
    state.set("/networkinterfaces/b", nic("b", "001DD8070002", "10.0.0.2"))
    state.remove("/networkinterfaces/a")
    assert [p.ref for p, _ in copied.all("networkInterfaces")] == ["/networkInterfaces/a"]
    assert copied.top(parse_path("/networkInterfaces/A")) is not None
    assert copied.configuration == {"/networkinterfaces/a": {"status": "Success"}}
    assert copied.macs == {"001DD8070001": "/networkInterfaces/a"}
    assert [p.ref for p, _ in state.all("networkInterfaces")] == ["/networkInterfaces/b"]
    assert state.configuration == {}


def test_back_references_follow_set_and_remove() -> None:
    state = State()
    subnet = "/virtualnetworks/contoso/subnets/s"
    state.set("/networkinterfaces/sql", nic("SQL", "001DD8070001", "10.1.1.11"))
    state.set("/networkinterfaces/web", nic("Web", "001DD8070002", "10.1.1.12"))
    configs = ("networkInterfaces", "ipConfigurations")
    assert state.referrers[subnet][configs] == {
        "/networkInterfaces/SQL/ipConfigurations/ipconfig1": (
            "properties.ipConfigurations[0].properties.subnet"
        ),
        "/networkInterfaces/Web/ipConfigurations/ipconfig1": (
            "properties.ipConfigurations[0].properties.subnet"
        ),
    }
    state.set("/networkinterfaces/web", nic("Web", "001DD8070002", "10.2.2.2", "Fabrikam"))
    assert list(state.referrers[subnet][configs]) == [
        "/networkInterfaces/SQL/ipConfigurations/ipconfig1"
    ]
    copied = state.copy()
    state.remove("/networkinterfaces/sql")
    assert subnet not in state.referrers
    assert list(copied.referrers[subnet][configs]) == [
        "/networkInterfaces/SQL/ipConfigurations/ipconfig1"
    ]
