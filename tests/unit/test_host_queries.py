"""The host's control ops over a real HostSwitch: listings, Get-PACAMapping, PAs, trace."""

from __future__ import annotations

import json
from typing import Any

import pytest
from host_fixtures import GATEWAY, UNPROGRAMMED, AgentState, host_a, process_status
from vfp_frames import CONTOSO, FABRIKAM, PA_A, PA_B, ROUTER, VM1, VM2, VM3, VM5

from openhnv.host.control import Handler, handle_line
from openhnv.host.errors import FrameSpecError
from openhnv.host.frame_spec import parse_description
from openhnv.host.queries import describe_conditions, host_handlers
from openhnv.host.tracing import uplink_frame
from openhnv.packet.flowkey import parse_flow_key
from openhnv.packet.frames import decapsulate
from openhnv.vfp import commands as c
from openhnv.vfp.policy import conditions
from openhnv.vfp.spaces import Mapping
from openhnv.vswitch.null import NullDriver
from openhnv.vswitch.switch import HostSwitch
from openhnv.vswitch.team import Placement

PROBLEM = {"table": "FW_Rules", "uuid": "u1", "key": "r1", "reason": "bad protocol 'x'"}


@pytest.fixture
def host() -> tuple[HostSwitch, NullDriver, dict[str, Handler]]:
    switch, driver = host_a()
    handlers = host_handlers(switch, AgentState([PROBLEM]), process_status=process_status)
    return switch, driver, dict(handlers)


def run(handlers: dict[str, Handler], op: str, **params: Any) -> Any:
    return handlers[op](params)


def test_list_ports_shows_programmed_and_reported_ports(host: Any) -> None:
    _, _, ops = host
    rows = {r["name"]: r for r in run(ops, "list-ports")}
    assert set(rows) == {VM1[0], VM3[0], VM5[0], UNPROGRAMMED[0]}
    assert rows["vm1"]["mac"] == VM1[1]
    assert rows["vm1"]["vsid"] == 5001
    assert rows["vm1"]["attached"]
    assert rows["vm1"]["programmed"]
    assert rows["vm1"]["layers"] == 3
    assert rows[UNPROGRAMMED[0]] == {
        "name": UNPROGRAMMED[0],
        "mac": UNPROGRAMMED[1],
        "attached": True,
        "programmed": False,
    }


def test_layers_groups_and_rules(host: Any) -> None:
    _, _, ops = host
    layers = run(ops, "list-layers", port="vm1")
    assert [x["name"] for x in layers] == ["ACL_NIC", "ACL_SUBNET", "VNET"]
    groups = run(ops, "list-groups", port="vm1", layer="VNET")
    assert [(g["name"], g["direction"]) for g in groups] == [("out-v4", "out")]
    vnet = run(ops, "list-rules", port="vm1", layer="VNET", group="out-v4")
    assert [(r["layer"], r["rule_id"]) for r in vnet] == [("VNET", "route"), ("VNET", "l2")]
    every = run(ops, "list-rules", port="vm1")
    assert {(r["layer"], r["group"]) for r in every} == {
        ("ACL_NIC", "in-v4"),
        ("ACL_NIC", "out-v4"),
        ("ACL_SUBNET", "in-v4"),
        ("ACL_SUBNET", "out-v4"),
        ("VNET", "out-v4"),
    }


@pytest.mark.parametrize(
    ("op", "params", "says"),
    [
        ("list-layers", {}, "missing argument 'port'"),
        ("list-layers", {"port": "vm9"}, "no such port"),
        ("list-layers", {"port": 5}, "must be a non-empty string"),
        ("list-groups", {"port": "vm1", "layer": "NOPE"}, "no such layer"),
        ("list-rules", {"port": "vm1", "layer": "VNET"}, "both 'layer' and 'group'"),
        ("list-flows", {"port": "vm1", "limit": -1}, "non-negative integer"),
        ("list-flows", {"port": "vm1", "state": "open"}, "state='open': states are"),
        ("list-mappings", {"port": "vm9"}, "port='vm9': no such port (ports: vm1, vm3, vm5"),
        ("counters", {"port": "nope"}, "no such port"),
        ("trace", {"port": "vm1", "tokens": "src=1"}, "list of name=value strings"),
        ("trace", {"port": "vm1", "tokens": ["dst=10.1.1.12"]}, "missing src=IP"),
    ],
)
def test_bad_arguments_come_back_as_errors(
    host: Any, op: str, params: dict[str, Any], says: str
) -> None:
    _, _, ops = host
    reply = handle_line(ops, json.dumps({"op": op, **params}).encode())
    assert reply["ok"] is False, reply
    assert says in reply["error"], reply


def test_pa_ca_mapping_like_get_pacamapping(host: Any) -> None:
    _, _, ops = host
    rows = run(ops, "pa-ca-mapping")
    assert len(rows) == 6
    vm1 = next(r for r in rows if r["ca_mac_address"] == VM1[1])
    assert vm1 == {
        "ca_ip_address": "10.1.1.11",
        "ca_mac_address": VM1[1],
        "virtual_subnet_id": 5001,
        "pa_ip_address": PA_A,
        "rdid": CONTOSO,
        "encapsulation": "vxlan",
        "mapping_type": "local",
    }
    vm2 = next(r for r in rows if r["ca_mac_address"] == VM2[1])
    assert vm2["pa_ip_address"] == PA_B
    assert vm2["mapping_type"] == "remote"
    # the overlapping 10.1.1.11 of Fabrikam is its own row
    assert {(r["ca_ip_address"], r["rdid"]) for r in rows if r["ca_ip_address"] == "10.1.1.11"} == {
        ("10.1.1.11", CONTOSO),
        ("10.1.1.11", FABRIKAM),
    }
    assert [r["virtual_subnet_id"] for r in rows] == sorted(r["virtual_subnet_id"] for r in rows)


def test_pa_ca_mapping_narrowed_to_a_ca_a_pa_or_a_vsid(host: Any) -> None:
    _, _, ops = host
    both = run(ops, "pa-ca-mapping", ca="10.1.1.11")
    assert {r["rdid"] for r in both} == {CONTOSO, FABRIKAM}
    assert [r["rdid"] for r in run(ops, "pa-ca-mapping", ca="10.1.1.11", vsid=5001)] == [CONTOSO]
    assert {r["pa_ip_address"] for r in run(ops, "pa-ca-mapping", pa=PA_B)} == {PA_B}
    assert run(ops, "pa-ca-mapping", ca="10.9.9.9") == []


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"ca": "10.1.1.300"}, "'ca': '10.1.1.300' is not an IP address"),
        ({"pa": "host"}, "'pa': 'host' is not an IP address"),
        ({"vsid": "5001"}, "'vsid' must be a non-negative integer"),
    ],
)
def test_pa_ca_mapping_filters_are_checked(host: Any, params: dict[str, Any], says: str) -> None:
    _, _, ops = host
    reply = handle_line(ops, json.dumps({"op": "pa-ca-mapping", **params}).encode())
    assert reply["ok"] is False, reply
    assert says in reply["error"], reply


def test_list_mappings_of_a_port_stay_in_its_routing_domain(host: Any) -> None:
    _, _, ops = host
    assert {m["rdid"] for m in run(ops, "list-mappings", port="vm1")} == {CONTOSO}
    assert len(run(ops, "list-mappings")) == 6
    spaces = {s["rdid"]: s for s in run(ops, "list-spaces")}
    assert spaces[CONTOSO]["vsids"] == [5001, 5002]
    assert spaces[FABRIKAM]["mappings"] == 1


def test_provider_addresses_like_get_provideraddress(host: Any) -> None:
    switch, _, ops = host
    (pa,) = run(ops, "provider-addresses")
    mac = switch.driver.uplink_mac("up0")
    assert pa == {
        "provider_address": PA_A,
        "mac_address": mac,
        "prefix_length": 24,
        "subnet_mask": "255.255.255.0",
        "default_gateway": GATEWAY,
        "gateway_mac": None,
        "vlan": "VLAN7",
        "vlan_id": 7,
        "interface": "up0",
        "member": "up0",
        "moved": False,
    }


def test_provider_addresses_and_status_show_a_pa_moved_to_another_team_member(host: Any) -> None:
    switch, _, ops = host
    switch.team_changed({PA_A: Placement(PA_A, "up0", "up1")}, {"up0": False, "up1": True})
    (pa,) = run(ops, "provider-addresses")
    assert (pa["interface"], pa["member"], pa["moved"]) == ("up0", "up1", True)
    team = run(ops, "status")["team"]
    assert team["members"] == {"up0": "down", "up1": "up"}
    assert team["provider_addresses"] == {PA_A: {"member": "up1", "home": "up0", "moved": True}}


def test_status_and_problems_come_from_process_and_agent(host: Any) -> None:
    _, _, ops = host
    status = run(ops, "status")
    assert status["name"] == "hostA"
    assert status["agent"]["connected"] is True
    assert run(ops, "problems") == [PROBLEM]
    assert run(ops, "ping") == {"name": "hostA", "pid": 4242}


def test_uplink_counters_show_a_spoofed_source(host: Any) -> None:
    switch, driver, ops = host
    spoofed = switch.inspect(
        lambda e: uplink_frame(
            e,
            parse_description(
                [
                    "src=10.1.1.12",
                    "dst=10.1.1.11",
                    "rdid=" + CONTOSO,
                    "outer_src=192.168.1.99",
                    "proto=udp",
                ]
            ),
        )
    )
    driver.inject_from_uplink(spoofed)
    assert run(ops, "counters", port="uplink")["drop:spoofed_source"] == 1
    assert driver.take_sent("vm1") == []


def test_flows_and_counters_of_a_vm_port(host: Any) -> None:
    switch, driver, ops = host
    frame = switch.inspect(
        lambda e: uplink_frame(
            e,
            parse_description(
                ["src=10.1.1.12", "dst=10.1.1.11", "rdid=" + CONTOSO, "proto=udp", "dport=53"]
            ),
        )
    )
    driver.inject_from_uplink(frame)
    assert len(driver.take_sent("vm1")) == 1
    flows = run(ops, "list-flows", port="vm1")
    assert [(f["direction"], f["state"]) for f in flows] == [("in", "unreplied")]
    assert run(ops, "list-flows", port="vm1", limit=0) == []
    assert run(ops, "list-flows", port="vm1", state="established,closing") == []
    assert run(ops, "list-flows", port="vm1", state="unreplied") == flows
    assert run(ops, "counters", port="vm1")["packets_in"] == 1
    assert any(r["matches"] for r in run(ops, "rule-counters", port="vm1"))


def test_trace_out_of_a_vm_to_a_remote_ca(host: Any) -> None:
    _, _, ops = host
    t = run(ops, "trace", port="vm1", tokens=["src=10.1.1.11", "dst=10.1.1.12", "dport=1433"])
    assert t["result"] == f"transmit from PA {PA_A} to PA {PA_B}"
    assert t["direction"] == "out"
    assert "10.1.1.11" in t["frame"]
    assert "1433" in t["frame"]
    assert [s["layer"] for s in t["steps"]][:1] == ["ACL_NIC"]
    assert t["lines"][-1].strip().startswith("result: transmit")


def test_trace_to_another_subnet_goes_to_the_router_mac(host: Any) -> None:
    _, _, ops = host
    t = run(ops, "trace", port="vm1", tokens=["src=10.1.1.11", "dst=10.1.2.13", "proto=icmp"])
    assert t["frame"].startswith(f"{VM1[1]} > {ROUTER} ipv4 10.1.1.11 > 10.1.2.13")
    assert t["result"] == f"deliver to port {VM3[0]}"
    assert t["then"]["port"] == VM3[0]
    assert t["then"]["direction"] == "in"


def test_trace_inbound_fills_the_peer_mac(host: Any) -> None:
    _, _, ops = host
    t = run(
        ops,
        "trace",
        port="vm1",
        direction="in",
        tokens=["src=10.1.1.12", "dst=10.1.1.11", "dport=22"],
    )
    assert t["direction"] == "in"
    assert VM2[1] in t["frame"]


def test_trace_from_the_uplink_decapsulates_to_the_local_port(host: Any) -> None:
    switch, _, ops = host
    tokens = ["src=10.1.1.12", "dst=10.1.1.11", "rdid=" + CONTOSO, "dport=1433"]
    t = run(ops, "trace", port="uplink", tokens=tokens)
    assert t["result"] == "decapsulate to port vm1"
    assert t["then"]["port"] == "vm1"
    frame = switch.inspect(lambda e: uplink_frame(e, parse_description(tokens)))
    tunnel = decapsulate(frame)
    assert tunnel.vsid == 5001
    assert tunnel.encapsulation == "vxlan"
    inner = parse_flow_key(tunnel.inner)
    assert (inner.src_mac, inner.dst_mac) == (VM2[1], VM1[1])


def test_trace_from_the_uplink_picks_the_local_ca_or_asks_for_the_rdid(host: Any) -> None:
    switch, _, ops = host
    # 10.1.1.11 is Contoso's VM1 here and Fabrikam's on host B: the local one is meant
    t = run(ops, "trace", port="uplink", tokens=["src=10.1.1.12", "dst=10.1.1.11"])
    assert t["result"] == "decapsulate to port vm1"
    switch.apply([c.AddMapping(Mapping(FABRIKAM, "10.1.1.15", PA_A, "00:1d:d8:00:01:05", 6001))])
    with pytest.raises(FrameSpecError, match="several routing domains"):
        run(ops, "trace", port="uplink", tokens=["src=10.1.1.12", "dst=10.1.1.15"])
    nvgre = run(
        ops,
        "trace",
        port="uplink",
        tokens=["src=10.1.1.12", "dst=10.1.1.15", "vsid=5001", "encap=nvgre"],
    )
    assert nvgre["result"] == f"decapsulate to port {VM5[0]}"
    with pytest.raises(FrameSpecError, match="no mapping for this CA"):
        run(ops, "trace", port="uplink", tokens=["src=10.1.1.12", "dst=10.9.9.9"])


def test_trace_changes_nothing(host: Any) -> None:
    _, _, ops = host
    before = run(ops, "counters", port="vm1")
    run(ops, "trace", port="vm1", tokens=["src=10.1.1.11", "dst=10.1.1.12"])
    assert run(ops, "counters", port="vm1") == before
    assert run(ops, "list-flows", port="vm1") == []


def test_rule_conditions_read_like_the_rule() -> None:
    cond = conditions(
        src_prefixes=["10.1.1.0/24"], dst_prefixes=["0.0.0.0/0"], dst_excluded=["10.1.0.0/16"],
        protocols=[6, 17], dst_ports=[1433, (8000, 8080)], dst_macs=["40:1D:D8:B7:1C:06"],
    )  # fmt: skip
    assert describe_conditions(cond) == (
        "dmac=40:1d:d8:b7:1c:06 src=10.1.1.0/24 dst=0.0.0.0/0 dst!=10.1.0.0/16 proto=tcp,udp "
        "dport=1433,8000-8080"
    )
    assert describe_conditions(conditions()) == "any"


def test_list_rules_shows_readable_conditions(host: Any) -> None:
    _, _, ops = host
    rows = run(ops, "list-rules", port="vm1", layer="VNET", group="out-v4")
    assert [r["conditions"] for r in rows] == [f"dmac={ROUTER}", "any"]
