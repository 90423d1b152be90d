"""The agent patching mapping batches against a real ovsdb-server: NICs of other hosts
come, move and go one transaction at a time, each programmed without a full re-plan,
and the engine ends where a full plan of the rows would put it; a bad mapping row is
still reported (by a full plan) and skipped, and the patching resumes after it."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest

from openhnv.agent.agent import HostAgent
from openhnv.agent.planner import changes, plan, plan_of_engine
from openhnv.agent.rows import TABLES, read_catalog
from openhnv.ovsdb.client import OvsdbClient
from openhnv.ovsdb.rows import Ref, Row, RowChange, diff
from openhnv.ovsdb.server import OvsdbServer
from openhnv.testing import snapshots as nb
from openhnv.testing.polling import eventually
from openhnv.testing.southbound import host_rows
from openhnv.vfp.engine import VfpEngine
from openhnv.vswitch.null import NullDriver
from openhnv.vswitch.switch import HostSwitch

WAIT = 15.0
UCAST, LOCATOR = "Ucast_Macs_Remote", "Physical_Locator"
HOST2, HOST3 = "vxlan_over_ipv4:192.168.2.20", "vxlan_over_ipv4:192.168.3.30"


@pytest.fixture
def controller(ovsdb_server: OvsdbServer) -> Iterator[OvsdbClient]:
    with OvsdbClient(ovsdb_server.unix_remote) as client:
        client.wait_synced(WAIT)
        client.apply(diff({}, host_rows(nb.figure8())))
        yield client


@pytest.fixture
def driver() -> NullDriver:
    return NullDriver()


@pytest.fixture
def agent(
    ovsdb_server: OvsdbServer, controller: OvsdbClient, driver: NullDriver
) -> Iterator[HostAgent]:
    switch = HostSwitch(VfpEngine(), driver, expire_interval=None)
    switch.start()
    host_agent = HostAgent(switch, ovsdb_server.unix_remote, host_name="host1")
    host_agent.start(timeout=WAIT)  # no VM port attached: the agent writes no row
    yield host_agent
    host_agent.stop()
    switch.stop()


def nic(vsid: str, mac: str, ip: str, locator: str = HOST2) -> list[RowChange]:
    """The mapping row of a NIC on another host, and its host's locator when new."""
    encapsulation, pa = locator.split(":")
    row: Row = {
        "MAC": mac,
        "ipaddr": ip,
        "logical_switch": Ref("Logical_Switch", vsid),
        "locator": Ref(LOCATOR, locator),
        "mapping_type": "remote",
    }
    changes = [RowChange("insert", UCAST, f"{vsid}/{mac}/{ip}", row)]
    if locator != HOST2:  # host2's is there (an insert of it would update immutable columns)
        locator_row: Row = {"encapsulation_type": encapsulation, "dst_ip": pa}
        changes.insert(0, RowChange("insert", LOCATOR, locator, locator_row))
    return changes


def converged(agent: HostAgent, controller: OvsdbClient) -> bool:
    """The engine holds what a full plan of the rows asks for, and the agent says so."""
    expected = plan(read_catalog(controller.snapshot(TABLES)))
    held = agent.switch.inspect(plan_of_engine)
    return changes(held, expected) == [] and agent.plan() == expected


def patched_at_least(agent: HostAgent, batches: int) -> bool:
    return agent.counters().get("incremental_syncs", 0) >= batches


def test_mapping_batches_are_patched_and_end_where_a_full_plan_would(
    agent: HostAgent, controller: OvsdbClient, driver: NullDriver
) -> None:
    counters = agent.counters
    assert counters()["full_syncs"] == 1
    steps = [
        nic("5001", "00:1d:d8:07:00:13", "10.1.1.13", HOST3),  # a new host's locator too
        nic("6001", "00:1d:d8:07:00:24", "10.1.1.14"),
        nic("5001", "00:1d:d8:07:00:13", "10.1.1.13"),  # moves: host3's locator goes
        [RowChange("delete", UCAST, "6001/00:1d:d8:07:00:24/10.1.1.14", {})],
    ]
    for i, step in enumerate(steps, 1):
        controller.apply(step)
        eventually(partial(patched_at_least, agent, i), f"step {i}")
        eventually(lambda: converged(agent, controller), f"step {i} programmed")
    assert counters()["full_syncs"] == 1
    assert agent.status()["mappings"] == 5
    assert agent.status()["rows"][LOCATOR] == 2

    bad = nic("5001", "00:1d:d8:07:00:15", "10.9.9.9")  # outside 10.1.1.0/24
    controller.apply(bad)
    problem = eventually(
        lambda: next((p for p in agent.problems() if p["table"] == UCAST), None), "the bad row"
    )
    assert problem is not None
    assert "outside" in problem["reason"]
    assert problem["uuid"] == controller.uuid_of(UCAST, bad[0].key)
    assert counters()["full_syncs"] == 2
    assert converged(agent, controller)
    controller.apply([RowChange("delete", UCAST, bad[0].key, {})])
    eventually(lambda: agent.problems() == [], "the problem cleared")

    patched = counters()["incremental_syncs"]
    controller.apply(nic("6001", "00:1d:d8:07:00:26", "10.1.1.16"))
    eventually(lambda: counters()["incremental_syncs"] > patched, "patching again")
    eventually(lambda: converged(agent, controller), "the last NIC programmed")
    assert agent.status()["mappings"] == 6

    # A VM port attaches: the agent writes its Physical_Port row, and patches it in.
    patched, full = counters()["incremental_syncs"], counters()["full_syncs"]
    driver.inject_port("vm-unknown", "00:1d:d8:07:00:77")
    eventually(lambda: counters()["incremental_syncs"] > patched, "the port row patched in")
    eventually(lambda: agent.status()["rows"]["Physical_Port"] == 3, "the port row counted")
    assert counters()["full_syncs"] == full
    assert converged(agent, controller)
