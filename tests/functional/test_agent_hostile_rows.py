"""Hostile southbound rows at a host agent, through a real ovsdb-server: values the schema
lets through but the agent cannot use (VSIDs out of range, multicast or malformed MACs,
huge strings, prefixes past /32, protocol sets of thousands, two MACs claiming one CA,
references to refused rows, thousands of garbage rows). Each becomes a problem naming
its table, row and column, logged once; the rest of the policy stays applied and the
flows already set up keep flowing."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from openhnv.agent.agent import HostAgent
from openhnv.ovsdb.client import OvsdbClient
from openhnv.ovsdb.rows import Ref, Row, RowChange, Value, diff
from openhnv.ovsdb.server import OvsdbServer
from openhnv.packet.frames import udp_frame
from openhnv.testing import snapshots as nb
from openhnv.testing.polling import eventually
from openhnv.testing.southbound import host_rows, port_of
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.layout import ACL_NIC
from openhnv.vswitch.null import NullDriver
from openhnv.vswitch.switch import HostSwitch

WAIT = 30.0
SQL_MAC, WEB_MAC = "00:1d:d8:07:00:11", "00:1d:d8:07:00:12"
GATEWAY_MAC = "02:99:00:00:00:01"
LOCATOR = "vxlan_over_ipv4:192.168.2.20"
HUGE = "9" * 100_000
GARBAGE_ROWS = 2000
UCAST = "Ucast_Macs_Remote"


def ucast(switch: str, mac: str, ip: str) -> tuple[str, Row]:
    row: Row = {"MAC": mac, "ipaddr": ip, "logical_switch": Ref("Logical_Switch", switch),
                "locator": Ref("Physical_Locator", LOCATOR), "mapping_type": "remote"}  # fmt: skip
    return f"{switch}/{mac}/{ip}", row


def fw_rule(key: str, vnic: str, **columns: Value) -> Row:
    row: dict[str, Value] = {
        "rule_id": key, "vnic_id": vnic, "acl_layer": "nic", "rule_name": key,
        "direction": "in", "action": "allow", "protocols": frozenset({"6"}),
        "src_ip_addresses": frozenset(), "dst_ip_addresses": frozenset(),
        "src_ip_excluded": frozenset(), "dst_ip_excluded": frozenset(),
        "src_port": "0-65535", "dst_port": "0-65535", "priority": 100,
        "rule_type": "user", "rule_state": "enabled", "logging_state": "disabled",
    }  # fmt: skip
    row.update(columns)
    return row


def hostile_rows(sql_port: str) -> tuple[list[RowChange], dict[tuple[str, str], str]]:
    """The inserts, and (table, key) -> a word the problem's reason must hold."""
    switch: Row = {"name": "77", "description": "rdid-x", "tunnel_key": 77, "other_config": {}}
    misnamed: Row = {"name": "9000", "description": "rdid-x", "tunnel_key": 9001,
                     "other_config": {}}  # fmt: skip
    rows: list[tuple[str, str, Row, str]] = [
        ("Logical_Switch", "77", switch, "tunnel_key"),
        ("Logical_Switch", "9000", misnamed, "tunnel_key"),
        (UCAST, *ucast("77", "00:1d:d8:07:00:77", "10.1.1.77"), "logical_switch"),
        (UCAST, *ucast("5001", "01:00:5e:00:00:01", "10.1.1.78"), "MAC"),
        (UCAST, *ucast("5001", "00:1d:d8:07:00:79", HUGE), "ipaddr"),
        (UCAST, *ucast("5001", "00:1d:d8:07:00:80", "10.9.9.9"), "outside"),
        (UCAST, *ucast("5001", "00:1d:d8:07:00:99", "10.1.1.12"), "already mapped"),
        ("FW_Rules", "huge-set", fw_rule("huge-set", sql_port,
                                         protocols=frozenset(str(p) for p in range(5000))),
         "protocols"),
        ("FW_Rules", "bad-prefix", fw_rule("bad-prefix", sql_port,
                                           src_ip_addresses=frozenset({"10.1.1.0/33"})),
         "src_ip_addresses"),
        ("FW_Rules", "huge-port", fw_rule("huge-port", sql_port, dst_port=HUGE), "dst_port"),
    ]  # fmt: skip
    for i in range(GARBAGE_ROWS):
        key, row = ucast("5001", f"zz:{i:05d}", f"10.1.1.{i % 250}")
        rows.append((UCAST, key, row, "MAC"))
    changes = [RowChange("insert", table, key, row) for table, key, row, _ in rows]
    return changes, {(table, key): word for table, key, _, word in rows}


@pytest.fixture
def agent_host(ovsdb_server: OvsdbServer) -> Iterator[tuple[HostAgent, NullDriver, OvsdbClient]]:
    driver = NullDriver()
    switch = HostSwitch(VfpEngine(), driver, expire_interval=None)
    switch.start()
    agent = HostAgent(switch, ovsdb_server.unix_remote, host_name="host1")
    with OvsdbClient(ovsdb_server.unix_remote) as controller:
        controller.wait_synced(WAIT)
        yield agent, driver, controller
    agent.stop()
    switch.stop()


def send_to_web(agent: HostAgent, port: str) -> None:
    agent.switch.from_port(port, [udp_frame(
        src_mac=SQL_MAC, dst_mac=WEB_MAC, src_ip="10.1.1.11", dst_ip="10.1.1.12",
        src_port=5000, dst_port=6000, payload=b"hello")])  # fmt: skip


def test_hostile_rows_are_skipped_and_named_and_the_policy_keeps_flowing(
    agent_host: tuple[HostAgent, NullDriver, OvsdbClient], caplog: pytest.LogCaptureFixture
) -> None:
    agent, driver, controller = agent_host
    rows = host_rows(nb.figure8())
    controller.apply(diff({}, rows))
    sql = port_of(rows, "contoso-sql")
    driver.inject_port(sql, SQL_MAC)
    agent.start(timeout=WAIT)
    driver.inject_neighbor("192.168.1.1", GATEWAY_MAC)
    send_to_web(agent, sql)
    assert len(driver.take_transmitted()) == 1
    flows = agent.switch.inspect(lambda e: e.listing.flows(sql))
    rules = agent.switch.inspect(lambda e: e.listing.rules(sql, ACL_NIC, "in-v4"))
    syncs = agent.syncs

    changes, words = hostile_rows(sql)
    with caplog.at_level(logging.WARNING, logger="openhnv.agent"):
        controller.apply(changes)
        eventually(
            lambda: {(p["table"], p["key"]) for p in agent.problems()} >= set(words),
            "every hostile row reported",
        )
    assert agent.syncs > syncs
    for problem in agent.problems():
        word = words.get((problem["table"], problem["key"]))
        assert word is not None, f"a good row was refused: {problem}"
        assert word in problem["reason"], problem
        assert problem["uuid"] == controller.uuid_of(problem["table"], problem["key"])
        assert len(problem["reason"]) < 1000, "a huge value is not repeated whole"
        eventually(  # logged just after the problems are published
            lambda: any("Logical_Switch '77'" in r.getMessage() and "tunnel_key" in
                        r.getMessage() for r in caplog.records),
            "the refused switch logged with its column",
        )  # fmt: skip
    assert max(len(r.getMessage()) for r in caplog.records) < 1000, "huge values clipped"

    # the policy that was there is still there, the flow still takes the fast path
    assert agent.switch.inspect(lambda e: e.listing.rules(sql, ACL_NIC, "in-v4")) == rules
    assert agent.switch.inspect(lambda e: e.listing.flows(sql)) == flows
    hits = agent.switch.inspect(lambda e: e.listing.counters(sql))["uft_hits"]
    send_to_web(agent, sql)
    assert len(driver.take_transmitted()) == 1
    assert agent.switch.inspect(lambda e: e.listing.counters(sql))["uft_hits"] == hits + 1

    # and a good change after them is applied
    after = nb.figure8()
    after["networkInterfaces"].append(
        nb.nic("contoso-app", "001DD8070013", [("10.1.1.13", "Contoso/Subnet1")], "host2")
    )
    controller.apply(diff(rows, host_rows(after)))
    eventually(
        lambda: len(agent.switch.inspect(lambda e: e.listing.mappings())) == 5, "the good change"
    )
