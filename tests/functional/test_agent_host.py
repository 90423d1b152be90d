"""The host agent against a real ovsdb-server: the controller's rows in, the engine's
programming out (ports, rules, mappings, PAs), ARP answers, Physical_Port rows back;
an incremental change flushes no flow, a restart rebuilds, a bad row is reported."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from openhnv.agent.agent import HostAgent
from openhnv.agent.planner import changes, plan_of_engine
from openhnv.ovsdb.client import OvsdbClient
from openhnv.ovsdb.rows import Row, RowChange, diff
from openhnv.ovsdb.server import OvsdbServer
from openhnv.packet.arp import Arp
from openhnv.packet.frames import udp_frame
from openhnv.testing import snapshots as nb
from openhnv.testing.polling import eventually
from openhnv.testing.snapshots import acl_datacenter
from openhnv.testing.southbound import SQL_MAC, HostRows, host_rows, port_of, sql_arp_request
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.layout import ACL_NIC, VNET
from openhnv.vswitch.null import NullDriver
from openhnv.vswitch.switch import HostSwitch
from openhnv.vswitch.team import Placement

WAIT = 15.0
T = TypeVar("T")
WEB_MAC = "00:1d:d8:07:00:12"
ROUTER_MAC = "40:1d:d8:b7:1c:06"
GATEWAY_MAC = "02:99:00:00:00:01"


@pytest.fixture
def controller(ovsdb_server: OvsdbServer) -> Iterator[OvsdbClient]:
    """The controller's side: an OVSDB client writing the compiled rows."""
    with OvsdbClient(ovsdb_server.unix_remote) as client:
        client.wait_synced(WAIT)
        yield client


class Host:
    """A HostSwitch on a NullDriver and the agent programming it."""

    def __init__(self, remote: str) -> None:
        self.remote = remote
        self.driver = NullDriver()
        self.switch = HostSwitch(VfpEngine(), self.driver, expire_interval=None)
        self.switch.start()
        self.agent = HostAgent(self.switch, remote, host_name="host1")

    def start(self) -> Host:
        self.agent.start(timeout=WAIT)
        return self

    def restart_agent(self) -> None:
        self.agent.stop()
        self.agent.start(timeout=WAIT)  # the same object: stop() then start() works

    def stop(self) -> None:
        self.agent.stop()
        self.switch.stop()

    def engine(self, fn: Callable[[VfpEngine], T]) -> T:
        return self.switch.inspect(fn)


@pytest.fixture
def hosts(ovsdb_server: OvsdbServer) -> Iterator[list[Host]]:
    made: list[Host] = []
    yield made
    for host in made:
        host.stop()


def figure8_host(
    controller: OvsdbClient, ovsdb_server: OvsdbServer, hosts: list[Host]
) -> tuple[Host, HostRows]:
    rows = host_rows(nb.figure8())
    controller.apply(diff({}, rows))
    host = Host(ovsdb_server.unix_remote)
    hosts.append(host)
    host.driver.inject_port(port_of(rows, "contoso-sql"), SQL_MAC)
    return host.start(), rows


def port_row(controller: OvsdbClient, port: str) -> Any:
    return controller.snapshot(["Physical_Port"])["Physical_Port"].get(port)


def test_start_programs_ports_rules_mappings_and_pas_before_returning(
    controller: OvsdbClient, ovsdb_server: OvsdbServer, hosts: list[Host]
) -> None:
    host, rows = figure8_host(controller, ovsdb_server, hosts)
    sql, fab = port_of(rows, "contoso-sql"), port_of(rows, "fabrikam-sql")
    ports = {p["name"]: p for p in host.engine(lambda e: e.listing.ports())}
    assert set(ports) == {sql, fab}
    assert [la["name"] for la in host.engine(lambda e: e.listing.layers(sql))] == [ACL_NIC, VNET]
    rules = host.engine(lambda e: e.listing.rules(sql, ACL_NIC, "in-v4"))
    assert {r["rule_id"] for r in rules} == {"default-allow-vnet-in", "default-deny-all-in"}
    assert len(host.engine(lambda e: e.listing.mappings())) == 4
    (pa,) = host.driver.provider_addresses
    assert (pa.address, pa.gateway, pa.interface) == ("192.168.1.10", "192.168.1.1", "up0")
    assert host.agent.problems() == []
    status = host.agent.status()
    assert status["connected"]
    assert status["rows"]["FW_Rules"] == 10
    assert status["ports"][sql] == {"programmed": True, "attached": True}
    row = eventually(
        lambda: (r := port_row(controller, sql)) and r["status"].get("attached") == "true" and r,
        "Physical_Port status attached=true",
    )
    assert row["status"]["reported_mac"] == SQL_MAC
    assert row["other_config"]["mac_address"] == SQL_MAC  # the controller's columns kept


def test_arp_is_answered_from_the_mapping_store(
    controller: OvsdbClient, ovsdb_server: OvsdbServer, hosts: list[Host]
) -> None:
    host, rows = figure8_host(controller, ovsdb_server, hosts)
    sql = port_of(rows, "contoso-sql")
    for target, mac in (("10.1.1.12", WEB_MAC), ("10.1.1.1", ROUTER_MAC)):
        host.driver.inject_from_port(sql, sql_arp_request(target))
        (reply,) = host.driver.take_sent(sql)
        answer, _ = Arp.parse(reply, 14)
        assert (answer.op, answer.sender_mac.hex(":")) == (2, mac)
    host.driver.inject_from_port(sql, sql_arp_request("10.1.1.99"))
    assert host.driver.take_sent(sql) == []
    assert host.agent.counters()["arp_unanswered"] == 1


def send_to_web(host: Host, sql: str) -> None:
    frame = udp_frame(
        src_mac=SQL_MAC,
        dst_mac=WEB_MAC,
        src_ip="10.1.1.11",
        dst_ip="10.1.1.12",
        src_port=5000,
        dst_port=6000,
        payload=b"hello",
    )
    host.driver.inject_from_port(sql, frame)


def test_an_unrelated_change_flushes_no_flow(
    controller: OvsdbClient, ovsdb_server: OvsdbServer, hosts: list[Host]
) -> None:
    host, rows = figure8_host(controller, ovsdb_server, hosts)
    sql, fab = port_of(rows, "contoso-sql"), port_of(rows, "fabrikam-sql")
    host.driver.inject_neighbor("192.168.1.1", GATEWAY_MAC)
    send_to_web(host, sql)
    (sent,) = host.driver.take_transmitted()
    assert sent.provider_address == "192.168.2.20"
    flows = host.engine(lambda e: e.listing.flows(sql))
    assert len(flows) == 1
    sql_generation = host.engine(lambda e: e.state.ports[sql].generation)
    syncs = host.agent.syncs

    # An ACL rule of the other port changes: the contoso port's policy is untouched.
    fab_rule = next(
        k
        for k, r in rows["FW_Rules"].items()
        if r["vnic_id"] == fab and r["rule_name"] == "default-deny-all-in"
    )
    controller.apply([RowChange("update", "FW_Rules", fab_rule, {"priority": 65400})])
    eventually(lambda: host.agent.syncs > syncs, "a sync after the ACL change")
    assert host.engine(lambda e: e.state.ports[sql].generation) == sql_generation
    assert host.engine(lambda e: e.listing.flows(sql)) == flows

    # A NIC appears on host2 in Contoso: one more mapping, the flow is still there.
    after = nb.figure8()
    after["networkInterfaces"].append(
        nb.nic("contoso-app", "001DD8070013", [("10.1.1.13", "Contoso/Subnet1")], "host2")
    )
    controller.apply(diff(rows, host_rows(after)))
    eventually(lambda: len(host.engine(lambda e: e.listing.mappings())) == 5, "the new mapping")
    assert [f["key"] for f in host.engine(lambda e: e.listing.flows(sql))] == [
        f["key"] for f in flows
    ]
    send_to_web(host, sql)
    assert len(host.driver.take_transmitted()) == 1
    assert host.engine(lambda e: e.listing.counters(sql))["packets_out"] == 2


def test_restart_rebuilds_and_a_restart_on_the_same_switch_changes_nothing(
    controller: OvsdbClient, ovsdb_server: OvsdbServer, hosts: list[Host]
) -> None:
    host, rows = figure8_host(controller, ovsdb_server, hosts)
    sql = port_of(rows, "contoso-sql")
    before = host.engine(plan_of_engine)
    generation = host.engine(lambda e: e.state.ports[sql].generation)
    host.restart_agent()
    assert host.engine(lambda e: e.state.ports[sql].generation) == generation
    assert changes(host.engine(plan_of_engine), before) == []
    after = nb.figure8()  # and the restarted agent follows changes again
    after["networkInterfaces"].append(
        nb.nic("contoso-app", "001DD8070013", [("10.1.1.13", "Contoso/Subnet1")], "host2")
    )
    controller.apply(diff(rows, host_rows(after)))
    eventually(lambda: len(host.engine(lambda e: e.listing.mappings())) == 5, "the change followed")
    expected = host.engine(plan_of_engine)
    fresh = Host(ovsdb_server.unix_remote)
    hosts.append(fresh)
    host.stop()
    hosts.remove(host)
    fresh.start()
    assert changes(fresh.engine(plan_of_engine), expected) == []
    assert len(fresh.engine(lambda e: e.listing.mappings())) == 5
    # the VM port is gone with the old host process: its row says so
    eventually(
        lambda: port_row(controller, sql)["status"].get("attached") == "false",
        "attached=false after the port went away",
    )


def test_an_ovsdb_server_restart_flushes_nothing(
    controller: OvsdbClient, ovsdb_server: OvsdbServer, hosts: list[Host]
) -> None:
    host, rows = figure8_host(controller, ovsdb_server, hosts)
    sql = port_of(rows, "contoso-sql")
    generation = host.engine(lambda e: e.state.ports[sql].generation)
    ovsdb_server.stop()
    eventually(lambda: not host.agent.status()["connected"], "the agent sees the server gone")
    ovsdb_server.start()
    eventually(lambda: host.agent.status()["connected"], "the agent reconnected")
    assert host.engine(lambda e: e.state.ports[sql].generation) == generation
    assert len(host.engine(lambda e: e.listing.ports())) == 2


def test_a_hand_written_bad_row_is_skipped_and_reported(
    controller: OvsdbClient, ovsdb_server: OvsdbServer, hosts: list[Host]
) -> None:
    host, rows = figure8_host(controller, ovsdb_server, hosts)
    sql = port_of(rows, "contoso-sql")
    bad: Row = {
        "rule_id": "bad-rule",
        "vnic_id": sql,
        "acl_layer": "nic",
        "rule_name": "bad",
        "direction": "in",
        "action": "allow",
        "protocols": frozenset({"6"}),
        "src_ip_addresses": frozenset({"10.1.1.300/24"}),
        "dst_ip_addresses": frozenset(),
        "src_ip_excluded": frozenset(),
        "dst_ip_excluded": frozenset(),
        "src_port": "0-65535",
        "dst_port": "22-22",
        "priority": 100,
        "rule_type": "user",
        "rule_state": "enabled",
        "logging_state": "disabled",
    }
    controller.apply([RowChange("insert", "FW_Rules", "bad-rule", bad)])
    problem = eventually(
        lambda: next((p for p in host.agent.problems() if p["key"] == "bad-rule"), None),
        "the bad row reported",
    )
    assert problem is not None
    assert problem["table"] == "FW_Rules"
    assert problem["uuid"] == controller.uuid_of("FW_Rules", "bad-rule")
    assert "10.1.1.300/24" in problem["reason"]
    rules = host.engine(lambda e: e.listing.rules(sql, ACL_NIC, "in-v4"))
    assert "bad" not in {r["rule_id"] for r in rules}
    # a good change after it is still programmed
    after = nb.figure8()
    after["networkInterfaces"].append(
        nb.nic("contoso-app", "001DD8070013", [("10.1.1.13", "Contoso/Subnet1")], "host2")
    )
    controller.apply(diff(rows, host_rows(after)))
    eventually(lambda: len(host.engine(lambda e: e.listing.mappings())) == 5, "the good change")
    controller.apply([RowChange("delete", "FW_Rules", "bad-rule", {})])
    eventually(lambda: host.agent.problems() == [], "the problem cleared")


def test_physical_port_rows_follow_the_vm_ports(
    controller: OvsdbClient, ovsdb_server: OvsdbServer, hosts: list[Host]
) -> None:
    host, rows = figure8_host(controller, ovsdb_server, hosts)
    sql = port_of(rows, "contoso-sql")
    host.driver.inject_port("vm-unknown", "00:1d:d8:07:00:77")
    row = eventually(lambda: port_row(controller, "vm-unknown"), "the agent's own row")
    assert row["status"] == {"attached": "true", "reported_mac": "00:1d:d8:07:00:77"}
    assert row["vlan_bindings"] == {}
    host.driver.remove_port("vm-unknown")
    eventually(lambda: port_row(controller, "vm-unknown") is None, "the unbound row deleted")
    host.driver.remove_port(sql)
    row = eventually(
        lambda: (r := port_row(controller, sql))["status"].get("attached") == "false" and r,
        "the bound row detached",
    )
    assert row["vlan_bindings"]
    assert row["status"]["reported_mac"] == SQL_MAC


def test_a_nic_without_its_own_acl_gets_only_the_subnet_layer(
    controller: OvsdbClient, ovsdb_server: OvsdbServer, hosts: list[Host]
) -> None:
    rows = host_rows(acl_datacenter(subnet_acl=True))
    controller.apply(diff({}, rows))
    host = Host(ovsdb_server.unix_remote).start()
    hosts.append(host)
    web = port_of(rows, "web")
    assert [la["name"] for la in host.engine(lambda e: e.listing.layers(web))] == [
        "ACL_SUBNET",
        VNET,
    ]


def test_ports_swapping_macs_converge_after_a_refusal(
    controller: OvsdbClient, ovsdb_server: OvsdbServer, hosts: list[Host]
) -> None:
    """The engine refuses the first AddPort of a swap (the MAC is still the other
    port's): the refused port is reported, then retried, and both end up right."""
    host, rows = figure8_host(controller, ovsdb_server, hosts)
    sql, fab = port_of(rows, "contoso-sql"), port_of(rows, "fabrikam-sql")
    macs = {sql: "00:1d:d8:07:00:21", fab: "00:1d:d8:07:00:11"}
    controller.apply(
        [
            RowChange(
                "update",
                "Physical_Port",
                port,
                {
                    "other_config": {
                        **rows["Physical_Port"][port]["other_config"],
                        "mac_address": mac,
                    }
                },
            )
            for port, mac in macs.items()
        ]
    )
    eventually(
        lambda: {p["name"]: p["mac"] for p in host.engine(lambda e: e.listing.ports())} == macs,
        "both ports with the swapped MACs",
    )
    eventually(lambda: host.agent.problems() == [], "no problem left")


def test_team_member_rows_tell_the_controller_where_each_pa_lives(
    controller: OvsdbClient, ovsdb_server: OvsdbServer, hosts: list[Host]
) -> None:
    host, _ = figure8_host(controller, ovsdb_server, hosts)
    pa = "192.168.1.10"

    def status_of(member: str) -> Any:
        row = port_row(controller, member)
        return None if row is None else dict(row["status"])

    eventually(
        lambda: status_of("up0") == {"team_member": "true", "carrier": "up",
                                     "provider_addresses": pa, "moved_provider_addresses": ""},
        "up0's row with its PA",
    )  # fmt: skip
    host.switch.team_changed({pa: Placement(pa, "up0", "up1")}, {"up0": False, "up1": True})
    eventually(
        lambda: status_of("up1") == {"team_member": "true", "carrier": "up",
                                     "provider_addresses": pa, "moved_provider_addresses": pa},
        "up1's row carrying the moved PA",
    )  # fmt: skip
    gone = {"team_member": "true", "carrier": "down", "provider_addresses": "",
            "moved_provider_addresses": ""}  # fmt: skip
    assert status_of("up0") == gone
    assert host.agent.status()["rows"]["Physical_Port"] == 2  # the VM ports' rows only
    assert host.agent.problems() == []


def test_qos_caps_in_the_port_row_program_the_ports_qos_layer_and_a_change_lifts_them(
    controller: OvsdbClient, ovsdb_server: OvsdbServer, hosts: list[Host]
) -> None:
    host, rows = figure8_host(controller, ovsdb_server, hosts)
    sql = port_of(rows, "contoso-sql")
    before = rows["Physical_Port"][sql]["other_config"]
    capped = {**before, "qos_outbound_max_mbps": "50", "qos_inbound_max_mbps": "20"}
    controller.apply([RowChange("update", "Physical_Port", sql, {"other_config": capped})])

    def caps() -> tuple[int, int]:
        ports = {p["name"]: p for p in host.engine(lambda e: e.listing.ports())}
        return ports[sql]["qos_outbound_mbps"], ports[sql]["qos_inbound_mbps"]

    eventually(lambda: caps() == (50, 20), "the QoS caps programmed")
    assert host.engine(lambda e: e.listing.layers(sql))[0]["name"] == "QOS"
    controller.apply([RowChange("update", "Physical_Port", sql, {"other_config": before})])
    eventually(lambda: caps() == (0, 0), "the QoS caps lifted")
    assert host.agent.problems() == []


def test_a_reservation_the_switch_scales_down_is_noted_on_the_ports_row(
    controller: OvsdbClient,
    ovsdb_server: OvsdbServer,
    hosts: list[Host],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host, rows = figure8_host(controller, ovsdb_server, hosts)
    sql = port_of(rows, "contoso-sql")
    eventually(lambda: port_row(controller, sql)["status"].get("attached") == "true", "attached")
    # What the kernel driver's scheduler says of an oversubscribed uplink (vswitch.htb):
    # the NullDriver schedules nothing.
    cut = {"class": "1:5", "rate_mbps": 62.5, "ceil_mbps": 100.0, "uplink": "up0",
           "reserved_mbps": 100, "warning": "reservation 100 Mbit/s scaled to 62.5"}  # fmt: skip
    status: dict[str, object] = {"uplinks": {}, "ports": {sql: cut}}
    monkeypatch.setattr(host.switch, "qos_status", lambda: status)
    row = eventually(
        lambda: (r := port_row(controller, sql))["status"].get("qos_granted_mbps") and r,
        "the scaled reservation on the row",
    )
    assert row["status"] == {
        "attached": "true",
        "reported_mac": SQL_MAC,
        "qos_reserved_mbps": "100",
        "qos_granted_mbps": "62.5",
        "qos_uplink": "up0",
    }
    status["ports"] = {}  # granted in full again
    eventually(
        lambda: (
            port_row(controller, sql)["status"] == {"attached": "true", "reported_mac": SQL_MAC}
        ),
        "the reservation's keys gone",
    )
