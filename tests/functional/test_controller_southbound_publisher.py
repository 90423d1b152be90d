"""The southbound publisher against real ovsdb-server processes standing in for hosts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import partial
from typing import Any

import pytest

from openhnv.controller.compiler.compile import compile_host
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore
from openhnv.controller.southbound.publisher import Publisher
from openhnv.ovsdb.rows import RowChange
from openhnv.testing.datacenter import (
    code_of,
    configuration,
    fabric,
    nic,
    provisioning,
    server,
    vnet,
)
from openhnv.testing.ovsdb import HostDatabase, host_databases
from openhnv.testing.polling import eventually

DIGEST_HEX = 32  # a digest's 16 bytes as hex text
SOON_AUDIT = 2.0  # seconds: the production interval (30 s) is as long as a test's wait

TABLES_COMPARED = (
    "Physical_Switch",
    "Provider_Address",
    "Logical_Switch",
    "Logical_Router",
    "Physical_Locator",
    "Ucast_Macs_Remote",
    "Mcast_Macs_Remote",
    "Physical_Port",
    "FW_Rules",
)


@pytest.fixture
def three() -> Iterator[dict[str, HostDatabase]]:
    with host_databases("h1", "h2", "h3") as made:
        yield made


@pytest.fixture
def service() -> ControllerService:
    return ControllerService(SqliteStore(":memory:"))


@pytest.fixture
def publisher(service: ControllerService) -> Iterator[Publisher]:
    running = Publisher(service).start()
    try:
        yield running
    finally:
        running.stop()


def build(service: ControllerService, made: dict[str, HostDatabase]) -> None:
    """VNet A with NICs on h1 and h2, VNet B with one NIC on h3."""
    fabric(service)
    for name, host in made.items():
        server(service, name, host.remote)
    vnet(service, "A", "10.1.0.0/16", 5001)
    vnet(service, "B", "10.2.0.0/16", 6001)
    nic(service, "a1", "A", "10.1.0.11", "h1")
    nic(service, "a2", "A", "10.1.0.12", "h2")
    nic(service, "b1", "B", "10.2.0.11", "h3")


def put(service: ControllerService, ref: str, properties: dict[str, Any]) -> dict[str, Any]:
    """PUT ``properties`` as they are (a document read back and changed)."""
    _, doc = service.put(ref, {"resourceId": ref.rsplit("/", 1)[1], "properties": properties})
    return doc


def projected(actual: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """``actual`` rows cut down to the columns ``desired`` names (the rest are the host's)."""
    return {
        key: {c: v for c, v in row.items() if key not in desired or c in desired[key]}
        for key, row in actual.items()
    }


def holds_desired(service: ControllerService, host: HostDatabase) -> bool:
    """The host holds exactly what the compiler wants for it, in every published table."""
    desired = compile_host(service.snapshot(), host.name)
    with host.client() as client:
        actual = client.snapshot(TABLES_COMPARED)
    return all(
        projected(actual[t], dict(desired[t])) == {k: dict(r) for k, r in desired[t].items()}
        for t in TABLES_COMPARED
    )


def succeeded(service: ControllerService, *names: str) -> bool:
    return all(provisioning(service, f"/networkInterfaces/{n}") == "Succeeded" for n in names)


def reads_success(service: ControllerService, ref: str) -> bool:
    """The resource's configurationState says Success: the publisher writes it just after
    a NIC's provisioningState (two service calls), so a reader may see one first."""
    return configuration(service, ref).get("status") == "Success"


def has_row(host: HostDatabase, table: str, key: str) -> bool:
    return key in host.rows(table)


def has_no_rows(host: HostDatabase, table: str) -> bool:
    return not host.rows(table)


def has_rule(host: HostDatabase, rule_name: str) -> bool:
    return any(r["rule_name"] == rule_name for r in host.rows("FW_Rules").values())


def encapsulates(host: HostDatabase, encapsulation: str) -> bool:
    """Every locator of ``host`` uses ``encapsulation``."""
    return {r["encapsulation_type"] for r in host.rows("Physical_Locator").values()} == {
        encapsulation
    }


def test_nb_changes_reach_exactly_the_hosts_that_need_them(
    service: ControllerService, publisher: Publisher, three: dict[str, HostDatabase]
) -> None:
    build(service, three)
    eventually(lambda: succeeded(service, "a1", "a2", "b1"), "NICs Succeeded")
    for name, host in three.items():  # a NIC's state and other hosts' rows are separate writes
        eventually(partial(holds_desired, service, host), f"{name} holds what it needs")
    a_cas = {"5001/00:1d:d8:07:00:00/10.1.0.11", "5001/00:1d:d8:07:00:01/10.1.0.12"}
    assert set(three["h1"].rows("Ucast_Macs_Remote")) == a_cas
    assert set(three["h2"].rows("Ucast_Macs_Remote")) == a_cas
    assert set(three["h3"].rows("Ucast_Macs_Remote")) == {"6001/00:1d:d8:07:00:02/10.2.0.11"}
    assert set(three["h3"].rows("Logical_Switch")) == {"6001"}
    for name in three:
        eventually(partial(reads_success, service, f"/servers/{name}"), f"{name} Success")
    # A new NIC in B reaches h3 (and h1, where it lives), never h2.
    nic(service, "b2", "B", "10.2.0.12", "h1")
    eventually(lambda: succeeded(service, "b2"), "b2 Succeeded")
    assert "6001/00:1d:d8:07:00:03/10.2.0.12" in three["h3"].rows("Ucast_Macs_Remote")
    assert "6001" in three["h1"].rows("Logical_Switch")
    assert "6001" not in three["h2"].rows("Logical_Switch")
    for host in three.values():
        assert holds_desired(service, host)


def test_moving_a_nic_updates_every_host(
    service: ControllerService, publisher: Publisher, three: dict[str, HostDatabase]
) -> None:
    build(service, three)
    eventually(lambda: succeeded(service, "a1", "a2", "b1"), "NICs Succeeded")
    instance = service.get("/networkInterfaces/a1")["instanceId"]
    assert instance in three["h1"].rows("Physical_Port")
    nic(service, "a1", "A", "10.1.0.11", "h3")
    assert provisioning(service, "/networkInterfaces/a1") == "Updating"
    eventually(lambda: succeeded(service, "a1"), "moved a1 Succeeded")
    assert instance not in three["h1"].rows("Physical_Port")
    assert instance in three["h3"].rows("Physical_Port")
    h2_row = three["h2"].rows("Ucast_Macs_Remote")["5001/00:1d:d8:07:00:00/10.1.0.11"]
    h3_pa = service.get("/servers/h3")["properties"]["providerAddresses"][0]["address"]
    assert h2_row["locator"].key.endswith(":" + h3_pa)
    # h1 keeps VNet A for nothing: it has no NIC there any more.
    assert set(three["h1"].rows("Logical_Switch")) == set()
    for host in three.values():
        assert holds_desired(service, host)


@pytest.fixture
def auditing(service: ControllerService) -> Iterator[Publisher]:
    """A publisher that audits every host often: a row written to a host after the
    publisher's resync of it is found by the next audit, well inside a wait."""
    running = Publisher(service, audit_every=SOON_AUDIT).start()
    try:
        yield running
    finally:
        running.stop()


def test_a_restarted_or_wiped_host_is_resynced(
    service: ControllerService, auditing: Publisher, three: dict[str, HostDatabase]
) -> None:
    build(service, three)
    eventually(lambda: succeeded(service, "a1", "a2", "b1"), "NICs Succeeded")
    h2 = three["h2"]
    h2.stop()
    eventually(lambda: code_of(service, "/servers/h2") == "HostNotConnected", "h2 disconnected")
    eventually(
        lambda: "no socket" in str(configuration(service, "/servers/h2")), "h2's reason shown"
    )
    nic(service, "a3", "A", "10.1.0.13", "h1")  # h2 needs it too but is down
    eventually(lambda: succeeded(service, "a1", "b1"), "others still Succeeded")
    assert provisioning(service, "/networkInterfaces/a3") == "Updating"
    h2.start()
    eventually(lambda: succeeded(service, "a3"), "a3 Succeeded once h2 is back")
    assert holds_desired(service, h2)
    # A host that lost every row while the controller was away from it gets them back;
    # rows the controller does not want are removed.
    h2.wipe()
    h2.start()
    # The stray row may come before or after the publisher's resync of h2 (it reconnects
    # within 0.25 s): after it, only an audit finds it (the auditing publisher's).
    with h2.client() as client:
        client.apply(
            [RowChange("insert", "Logical_Switch", "7777", {"name": "7777", "tunnel_key": 7777})]
        )
    eventually(lambda: holds_desired(service, h2), "wiped h2 resynced")
    assert "7777" not in h2.rows("Logical_Switch")
    assert code_of(service, "/servers/h2") == "Success"


def test_a_reported_port_binds_an_unplaced_nic(
    service: ControllerService, publisher: Publisher, three: dict[str, HostDatabase]
) -> None:
    build(service, three)
    doc = nic(service, "a9", "A", "10.1.0.19", None)
    eventually(lambda: succeeded(service, "a9"), "unplaced NIC Succeeded")
    three["h3"].report_port(doc["instanceId"])
    eventually(
        lambda: (
            service.get("/networkInterfaces/a9")["properties"].get("server")
            == {"resourceRef": "/servers/h3"}
        ),
        "a9 bound to h3",
    )
    eventually(lambda: succeeded(service, "a9"), "bound a9 Succeeded")
    port = three["h3"].rows("Physical_Port")[doc["instanceId"]]
    assert port["vlan_bindings"]
    assert port["status"]["attached"] == "true"
    assert "5001/00:1d:d8:07:00:03/10.1.0.19" in three["h1"].rows("Ucast_Macs_Remote")
    # The northbound server stays authoritative: a report from another host is a warning.
    a1 = service.get("/networkInterfaces/a1")
    three["h2"].report_port(a1["instanceId"])
    eventually(
        lambda: code_of(service, "/networkInterfaces/a1") == "PortReportedOnOtherHost",
        "a1 warns",
    )
    after = service.get("/networkInterfaces/a1")
    assert after["properties"]["server"] == {"resourceRef": "/servers/h1"}
    assert after["etag"] == a1["etag"]
    assert configuration(service, "/networkInterfaces/a1")["status"] == "Warning"
    # Moved where its port is, the NIC's warning goes.
    nic(service, "a1", "A", "10.1.0.11", "h2")
    eventually(lambda: succeeded(service, "a1"), "a1 Succeeded on h2")
    eventually(lambda: code_of(service, "/networkInterfaces/a1") == "Success", "warning gone")


def test_a_reservation_the_host_scales_down_warns_on_the_nic(
    service: ControllerService, publisher: Publisher, three: dict[str, HostDatabase]
) -> None:
    build(service, three)
    eventually(lambda: succeeded(service, "a1"), "a1 Succeeded")
    instance = service.get("/networkInterfaces/a1")["instanceId"]
    # What h1's agent writes while its uplink's reservations exceed the link.
    scaled = {"qos_reserved_mbps": "100", "qos_granted_mbps": "62.5", "qos_uplink": "up0"}
    three["h1"].report_port(instance, status=scaled)
    eventually(lambda: code_of(service, "/networkInterfaces/a1") == "ReservationScaled", "a1 warns")
    state = configuration(service, "/networkInterfaces/a1")
    assert state["status"] == "Warning"
    message = state["detailedInfo"][0]["message"]
    assert "100 Mbit/s scaled to 62.5 Mbit/s on host h1" in message
    assert "uplink up0" in message
    assert provisioning(service, "/networkInterfaces/a1") == "Succeeded"
    # The controller's rewrite of the row (a PUT) leaves the host's status alone.
    nic(service, "a1", "A", "10.1.0.21", "h1")
    eventually(lambda: succeeded(service, "a1"), "a1 Succeeded again")
    eventually(
        lambda: code_of(service, "/networkInterfaces/a1") == "ReservationScaled",
        "a1 still warns after its PUT",
    )
    assert three["h1"].rows("Physical_Port")[instance]["status"]["qos_granted_mbps"] == "62.5"
    # Granted in full again: Success.
    three["h1"].report_port(instance)
    eventually(lambda: reads_success(service, "/networkInterfaces/a1"), "a1 Success")


def test_provisioning_state_flow(
    service: ControllerService, publisher: Publisher, three: dict[str, HostDatabase]
) -> None:
    build(service, three)
    three["h1"].stop()
    doc = nic(service, "a4", "A", "10.1.0.14", "h2")
    assert doc["properties"]["provisioningState"] == "Updating"
    assert provisioning(service, "/networkInterfaces/a4") == "Updating"  # h1 needs it, down
    three["h1"].start()
    eventually(lambda: succeeded(service, "a4"), "a4 Succeeded")
    eventually(partial(reads_success, service, "/networkInterfaces/a4"), "a4 Success")
    # A compile problem fails the NIC with the compiler's reason.
    server(service, "bare", "unix:/nonexistent/hnv-pub.sock", pa=False)
    nic(service, "a5", "A", "10.1.0.15", "bare")
    eventually(lambda: provisioning(service, "/networkInterfaces/a5") == "Failed", "a5 Failed")
    state = configuration(service, "/networkInterfaces/a5")
    assert state["status"] == "Failure"
    assert "no provider address" in state["detailedInfo"][0]["message"]
    # Fixed (the server gets a PA and a live host), the NIC follows without a PUT of its own.
    fourth = HostDatabase("h4").start()
    try:
        server(service, "bare", fourth.remote, pa=True)
        eventually(lambda: succeeded(service, "a5"), "a5 Succeeded once its server has a PA")
        eventually(partial(reads_success, service, "/networkInterfaces/a5"), "a5 Success")
    finally:
        fourth.remove()
    # An identical PUT changes nothing, not even the state.
    etag = service.get("/networkInterfaces/a4")["etag"]
    again = nic(service, "a4", "A", "10.1.0.14", "h2")
    assert again["etag"] == etag
    assert again["properties"]["provisioningState"] == "Succeeded"


@pytest.mark.parametrize(
    ("address", "code", "words"),
    [
        ("tcp:not-an-ip:6640", "InvalidManagementAddress", "not an IP address"),
        ("tcp:127.0.0.1:0", "InvalidManagementAddress", "port '0'"),
        ("unix:relative.sock", "InvalidManagementAddress", "absolute"),
        # a bare address is SSL at 6640, as Microsoft's NC dials it: never dialed here,
        # the controller has no --pki
        ("10.0.0.1", "InvalidManagementAddress", "ssl:10.0.0.1:6640 needs SSL"),
        ("host_1!", "InvalidManagementAddress", "neither an IP address"),
        ("unix:/nonexistent/hnv-pub.sock", "HostNotConnected", "no socket at"),
        ("ssl:127.0.0.1:6640", "InvalidManagementAddress", "--pki"),
    ],
)
def test_bad_management_addresses_are_explained(
    service: ControllerService, publisher: Publisher, address: str, code: str, words: str
) -> None:
    fabric(service)
    server(service, "odd", address)
    eventually(lambda: words in str(configuration(service, "/servers/odd")), f"{words!r} shown")
    state = configuration(service, "/servers/odd")
    assert state["status"] == "Failure"
    assert state["detailedInfo"][0]["code"] == code


def test_refused_tcp_port_is_explained(service: ControllerService, publisher: Publisher) -> None:
    fabric(service)
    server(service, "odd", "tcp:127.0.0.1:1")
    eventually(lambda: "refused" in str(configuration(service, "/servers/odd")), "refusal shown")


def test_two_servers_cannot_share_a_host(
    service: ControllerService, publisher: Publisher, three: dict[str, HostDatabase]
) -> None:
    fabric(service)
    server(service, "h1", three["h1"].remote)
    server(service, "twin", three["h1"].remote)
    eventually(lambda: "already server h1's" in str(configuration(service, "/servers/twin")), "dup")
    eventually(lambda: code_of(service, "/servers/h1") == "Success", "h1 connected")


def test_publisher_restart_converges(
    service: ControllerService, three: dict[str, HostDatabase]
) -> None:
    first = Publisher(service).start()
    try:
        build(service, three)
        eventually(lambda: succeeded(service, "a1", "a2", "b1"), "NICs Succeeded")
    finally:
        first.stop()
    # While no publisher runs: the NB state changes, and a host loses rows.
    put(service, "/virtualNetworks/A", service.get("/virtualNetworks/A")["properties"])
    nic(service, "a6", "A", "10.1.0.16", "h2")
    with three["h1"].client() as client:
        client.apply(
            [RowChange("delete", "Ucast_Macs_Remote", "5001/00:1d:d8:07:00:01/10.1.0.12", {})]
        )
    second = Publisher(service).start()
    try:
        eventually(lambda: succeeded(service, "a6"), "a6 Succeeded after restart")
        for host in three.values():
            eventually(partial(holds_desired, service, host), f"{host.name} resynced")
    finally:
        second.stop()


def test_a_restart_trusts_each_hosts_digest_and_audits_it_later(
    service: ControllerService, three: dict[str, HostDatabase]
) -> None:
    first = Publisher(service, audit_every=None).start()
    try:
        build(service, three)
        eventually(lambda: succeeded(service, "a1", "a2", "b1"), "NICs Succeeded")
    finally:
        first.stop()
    h1 = three["h1"]
    with h1.client() as client:  # lost while no controller runs; Global still says "all there"
        other_config = client.snapshot(["Global"])["Global"]["global"]["other_config"]
        assert isinstance(other_config, Mapping)
        assert len(str(other_config["openhnv-digest"])) == DIGEST_HEX
        client.apply(
            [RowChange("delete", "Ucast_Macs_Remote", "5001/00:1d:d8:07:00:01/10.1.0.12", {})]
        )
    trusting = Publisher(service, audit_every=None).start()
    try:
        eventually(lambda: trusting.summary()["inSync"] == 3, "every host in sync by its digest")
        assert trusting.summary()["transactions"] == 0
        assert trusting.summary()["verified"] == 0
    finally:
        trusting.stop()
    auditing = Publisher(service, audit_every=1.0).start()
    try:
        eventually(lambda: holds_desired(service, h1), "h1 repaired by its first audit")
        eventually(lambda: auditing.summary()["verified"] == 3, "every host read in full")
    finally:
        auditing.stop()


def test_rows_changed_behind_the_controllers_back_are_repaired(
    service: ControllerService, three: dict[str, HostDatabase]
) -> None:
    publisher = Publisher(service, audit_every=0.5).start()
    try:
        build(service, three)
        eventually(lambda: succeeded(service, "a1", "a2", "b1"), "NICs Succeeded")
        h1 = three["h1"]
        with h1.client() as client:  # another writer, while the controller stays connected
            client.apply(
                [
                    RowChange(
                        "delete", "Ucast_Macs_Remote", "5001/00:1d:d8:07:00:01/10.1.0.12", {}
                    ),
                    RowChange("insert", "Logical_Switch", "7777", {"name": "7777"}),
                    RowChange("update", "Logical_Switch", "5001", {"tunnel_key": 1}),
                ]
            )
        eventually(lambda: holds_desired(service, h1), "h1 repaired by the audit")
        assert "7777" not in h1.rows("Logical_Switch")
    finally:
        publisher.stop()


def test_deletes_subnets_and_acls_reach_the_right_hosts(
    service: ControllerService, publisher: Publisher, three: dict[str, HostDatabase]
) -> None:
    build(service, three)
    eventually(lambda: succeeded(service, "a1", "a2", "b1"), "NICs Succeeded")
    # An ACL on A's subnet: the FW rules of a1 (h1) and a2 (h2) change, h3's do not.
    h3_rules = three["h3"].rows("FW_Rules")
    rule = {
        "protocol": "TCP",
        "sourcePortRange": "*",
        "destinationPortRange": "80",
        "sourceAddressPrefix": "*",
        "destinationAddressPrefix": "*",
        "action": "Allow",
        "priority": 100,
        "type": "Inbound",
    }
    put(
        service,
        "/accessControlLists/web",
        {"aclRules": [{"resourceId": "http", "properties": rule}]},
    )
    body = service.get("/virtualNetworks/A")["properties"]
    body["subnets"][0]["properties"]["accessControlList"] = {
        "resourceRef": "/accessControlLists/web"
    }
    body["subnets"].append(
        {
            "resourceId": "s2",
            "properties": {"addressPrefix": "10.3.0.0/24", "virtualSubnetId": 5002},
        }
    )
    body["addressSpace"]["addressPrefixes"] = ["10.1.0.0/16", "10.3.0.0/24"]
    put(service, "/virtualNetworks/A", body)
    for name in ("h1", "h2"):
        eventually(partial(has_rule, three[name], "http"), f"{name} has the ACL rule")
        eventually(partial(has_row, three[name], "Logical_Switch", "5002"), f"{name} has s2")
    assert three["h3"].rows("FW_Rules") == h3_rules
    assert "5002" not in three["h3"].rows("Logical_Switch")
    # Deleting b1 empties h3 of B; deleting a server with no NIC closes its link.
    service.delete("/networkInterfaces/b1")
    eventually(lambda: not three["h3"].rows("Ucast_Macs_Remote"), "h3 forgets B")
    assert three["h3"].rows("Physical_Port") == {}
    service.delete("/networkInterfaces/a1")
    service.delete("/networkInterfaces/a2")
    service.delete("/servers/h3")
    eventually(lambda: "h3" not in publisher.links(), "h3's link closed")
    for name in ("h1", "h2"):
        eventually(partial(has_no_rows, three[name], "FW_Rules"), f"{name} has no rules left")
        assert holds_desired(service, three[name])


def test_switching_to_nvgre_rewrites_every_host(
    service: ControllerService, publisher: Publisher, three: dict[str, HostDatabase]
) -> None:
    build(service, three)
    eventually(lambda: succeeded(service, "a1", "a2", "b1"), "NICs Succeeded")
    put(service, "/virtualNetworkManager/configuration", {"networkVirtualizationProtocol": "Nvgre"})
    for host in three.values():
        eventually(partial(encapsulates, host, "nvgre_over_ipv4"), f"{host.name} on NVGRE")
        eventually(partial(holds_desired, service, host), f"{host.name} converged")
        assert host.rows("Global")["global"]["other_config"]["encapsulation"] == "nvgre"
