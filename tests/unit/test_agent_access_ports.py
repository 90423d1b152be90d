"""The host agent and access ports (NICs on a logical, VLAN, subnet): rows -> the
engine port bridged onto its VLAN with its ACLs, checked by where frames go; the
incremental path agrees with a full plan; the agent keeps the controller's rows."""

from __future__ import annotations

import copy

from access_world import MAC, NIC_REF, world
from vfp_frames import tcp_frame

from openhnv.agent.incremental import PlanState
from openhnv.agent.planner import EMPTY_PLAN, Plan, changes, plan, plan_of_engine
from openhnv.agent.port_rows import port_row_changes
from openhnv.agent.rows import read_catalog
from openhnv.ovsdb.keys import ACCESS_VLAN
from openhnv.ovsdb.rows import RowChange
from openhnv.testing.snapshots import instance_id
from openhnv.testing.southbound import host_rows
from openhnv.vfp import commands as c
from openhnv.vfp.emits import BRIDGED, Drop, Transmit
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.layout import ACL_NIC, VNET
from openhnv.vfp.spaces import ProviderAddress

PA = "192.168.1.10"
PORT = instance_id(NIC_REF)
PLAIN_MAC, PLAIN_IP = "00:1d:d8:50:00:99", "10.50.0.99"
TAG = b"\x81\x00" + (12).to_bytes(2, "big")


def programmed(p: Plan) -> VfpEngine:
    engine = VfpEngine(clock=lambda: 0.0)
    engine.programming.apply(c.AddProviderAddress(ProviderAddress(PA, "02:00:00:00:00:01")))
    for unit in changes(EMPTY_PLAN, p):
        engine.programming.apply_all(unit.commands)
    return engine


def test_an_access_port_row_becomes_a_port_on_its_vlan_with_its_acls_only() -> None:
    p = plan(read_catalog(host_rows(world())))
    assert p.problems == ()
    port = p.ports[PORT]
    assert (port.port.mac, port.port.access_vlan, port.port.vsid) == (MAC, 12, 0)
    assert port.port.ip_addresses == ("10.50.0.10",)
    assert list(port.layers) == [ACL_NIC]
    assert VNET not in port.layers
    assert p.mappings == {}


def test_its_frames_leave_tagged_and_its_acl_refuses_a_denied_port() -> None:
    engine = programmed(plan(read_catalog(host_rows(world(nic_acl="deny-ssh")))))
    out = tcp_frame(MAC, PLAIN_MAC, "10.50.0.10", PLAIN_IP, 40000, 80)
    (tx,) = engine.process(PORT, out)
    assert isinstance(tx, Transmit)
    assert tx.provider_address == BRIDGED
    assert tx.frame[12:16] == TAG
    ssh = tcp_frame(PLAIN_MAC, MAC, PLAIN_IP, "10.50.0.10", 40001, 22)
    assert engine.process("uplink", ssh[:12] + TAG + ssh[12:]) == [Drop(PORT, "acl_deny")]
    assert engine.state.port(PORT).counters["drop:acl_deny"] == 1


def test_an_engine_read_back_equals_its_plan() -> None:
    p = plan(read_catalog(host_rows(world(nic_acl="deny-ssh"))))
    assert changes(plan_of_engine(programmed(p)), p) == []


def test_a_changed_vlan_patches_the_port_as_a_full_plan_would() -> None:
    rows = host_rows(world())
    state = PlanState(read_catalog(rows), plan(read_catalog(rows)))
    row = copy.deepcopy(rows["Physical_Port"][PORT])
    row["other_config"] = {**row["other_config"], ACCESS_VLAN: "13"}
    rows["Physical_Port"][PORT] = row
    patch = state.update({("Physical_Port", PORT): row})
    full = plan(read_catalog(rows))
    assert full.ports[PORT].port.access_vlan == 13
    assert patch is None or state.plan.ports == full.ports


def test_a_bad_access_vlan_is_a_problem_naming_the_column() -> None:
    rows = host_rows(world())
    rows["Physical_Port"][PORT]["other_config"] = {
        **rows["Physical_Port"][PORT]["other_config"],
        ACCESS_VLAN: "5000",
    }
    p = plan(read_catalog(rows))
    assert PORT not in p.ports
    assert any("access_vlan" in problem.reason for problem in p.problems)


def test_a_detached_access_port_row_is_kept_as_the_controllers() -> None:
    row = host_rows(world())["Physical_Port"][PORT]
    row["status"] = {"attached": "true", "reported_mac": MAC}
    assert port_row_changes({PORT: None}, {PORT: row}) == [
        RowChange(
            "update", "Physical_Port", PORT, {"status": {"attached": "false", "reported_mac": MAC}}
        )
    ]
