"""Management addresses -> OVSDB remotes, and configurationState documents."""

from __future__ import annotations

from typing import Any

import pytest

from openhnv.controller.southbound.status import (
    AddressError,
    Remote,
    configuration_state,
    host_state,
    is_team_report,
    parse_remote,
    server_remote,
    server_remotes,
    team_warning,
    timestamp,
)


@pytest.mark.parametrize(
    ("text", "remote"),
    [
        ("unix:/run/openhnv/h1/ovsdb.sock", Remote("unix", path="/run/openhnv/h1/ovsdb.sock")),
        ("tcp:127.0.0.1:6640", Remote("tcp", ip="127.0.0.1", port=6640)),
        ("ssl:10.0.0.5:6640", Remote("ssl", ip="10.0.0.5", port=6640)),
        ("tcp:[::1]:6640", Remote("tcp", ip="::1", port=6640)),
    ],
)
def test_parse_remote(text: str, remote: Remote) -> None:
    assert parse_remote(text) == remote
    assert str(remote) == text


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("http://x", "not an OVSDB remote"),
        ("unix:run/x.sock", "must be absolute"),
        ("tcp:127.0.0.1", "must be tcp:IP:PORT"),
        ("tcp:127.0.0.1:http", "port 'http'"),
        ("ssl:127.0.0.1:70000", "port '70000'"),
        ("tcp:host1.example:6640", "not an IP address"),
        ("tcp::6640", "must be tcp:IP:PORT"),
    ],
)
def test_bad_remotes_are_named(text: str, words: str) -> None:
    with pytest.raises(AddressError, match="management address") as info:
        parse_remote(text)
    assert words in str(info.value)
    assert info.value.code == "InvalidManagementAddress"


def server(*connections: list[Any], port: int | None = None) -> dict[str, Any]:
    found: list[dict[str, Any]] = [{"managementAddresses": a} for a in connections]
    if port is not None:
        found[0]["port"] = port
    return {"properties": {"connections": found}}


def test_server_remote_takes_the_first_address() -> None:
    doc = server(["unix:/a.sock", "10.0.0.1"], ["tcp:127.0.0.1:1"])
    assert server_remote(doc) == Remote("unix", path="/a.sock")


@pytest.mark.parametrize(
    ("addresses", "port", "remote"),
    [
        (["10.0.0.1", "host1.example"], None, "ssl:10.0.0.1:6640"),
        (["Host01.Contoso.Local"], 6645, "ssl:host01.contoso.local:6645"),  # SDN Express
        (["fd00::5"], None, "ssl:[fd00::5]:6640"),
    ],
)
def test_a_bare_address_is_the_host_agents_ovsdb_over_ssl(
    addresses: list[str], port: int | None, remote: str
) -> None:
    """What Microsoft's NC dials for a server registered as SDN Express does."""
    assert str(server_remote(server(addresses, port=port))) == remote


def test_server_remote_explains_what_is_wrong() -> None:
    with pytest.raises(AddressError, match="no managementAddresses") as info:
        server_remote({"properties": {}})
    assert info.value.code == "HostNotConnected"
    with pytest.raises(AddressError, match="must be absolute"):
        server_remote(server(["unix:x", "unix:/ok.sock"]))  # malformed is not skipped
    with pytest.raises(AddressError, match="neither an IP address") as bad:
        server_remote(server(["host_1!"]))
    assert bad.value.code == "InvalidManagementAddress"
    with pytest.raises(AddressError, match="port 0"):
        server_remote(server(["10.0.0.1"], port=0))


def test_configuration_state_shape() -> None:
    state = configuration_state("Failure", "HostNotConnected", "down", 0.0)
    assert state == {
        "status": "Failure",
        "lastUpdatedTime": "1970-01-01T00:00:00.000+00:00",
        "detailedInfo": [
            {"source": "SoftwareDefinedNetworking", "code": "HostNotConnected", "message": "down"}
        ],
    }
    assert timestamp(1.5).endswith("01.500+00:00")


def test_host_state() -> None:
    ok = host_state("unix:/a", True, None, "HostNotConnected", 0.0)
    assert ok["status"] == "Success"
    assert "unix:/a" in ok["detailedInfo"][0]["message"]
    down = host_state("unix:/a", False, None, "HostNotConnected", 0.0)
    assert down["status"] == "Failure"
    assert "not connected" in down["detailedInfo"][0]["message"]
    refused = host_state("unix:/a", True, "refused", "PolicyConfigurationFailure", 0.0)
    assert refused["detailedInfo"][0] == {
        "source": "SoftwareDefinedNetworking",
        "code": "PolicyConfigurationFailure",
        "message": "refused",
    }


def test_server_remotes_gives_a_shared_remote_to_the_first_server() -> None:
    docs = [
        {"resourceId": "b", **server(["unix:/same.sock"])},
        {"resourceId": "a", **server(["unix:/same.sock"])},
        {"resourceId": "c", **server(["10.0.0.3"])},
        {"resourceId": "d", **server(["10.0.0.3"])},
    ]
    wanted, errors = server_remotes(docs)
    assert wanted == {
        "a": Remote("unix", path="/same.sock"),
        "c": Remote("ssl", ip="10.0.0.3", port=6640),
    }
    assert "already server a's" in str(errors["b"])
    assert "already server c's" in str(errors["d"])


def test_a_whole_team_warns_of_nothing() -> None:
    up = {"team_member": "true", "carrier": "up", "provider_addresses": "192.168.1.10",
          "moved_provider_addresses": ""}  # fmt: skip
    assert team_warning({"up0": up, "up1": {**up, "provider_addresses": "192.168.1.11"}}) is None


def test_a_member_without_carrier_and_the_pa_it_gave_away_are_named() -> None:
    members = {
        "up0": {"team_member": "true", "carrier": "down", "provider_addresses": "",
                "moved_provider_addresses": ""},
        "up1": {"team_member": "true", "carrier": "up",
                "provider_addresses": "192.168.1.10,192.168.1.11",
                "moved_provider_addresses": "192.168.1.10"},
    }  # fmt: skip
    warning = team_warning(members)
    assert warning is not None
    assert "without carrier: up0" in warning
    assert "192.168.1.10 on up1" in warning


def test_team_reports_are_told_from_vm_port_reports() -> None:
    assert is_team_report({"name": "up0", "status": {"team_member": "true"}})
    assert not is_team_report({"name": "nic-guid", "status": {"attached": "true"}})
    assert not is_team_report(None)
