"""Trace and listings: what an operator sees, and that looking changes nothing."""

from __future__ import annotations

from vfp_frames import MAC_A, MAC_B, PA_A, PA_B, ROUTER, VM1, VM2, VM4, VM5, host, udp_frame

from openhnv.vfp import commands as c
from openhnv.vfp.emits import UPLINK, Transmit
from openhnv.vfp.policy import OUT, Block, Rule, conditions


def test_trace_of_a_routed_packet_names_every_layer_rule_and_the_ht() -> None:
    a = host(PA_A, MAC_A)
    frame = udp_frame(VM1[1], ROUTER, VM1[2], VM4[2])
    before = (a.listing.counters("vm1"), a.listing.flows("vm1"))
    t = a.listing.trace("vm1", OUT, frame)
    assert (a.listing.counters("vm1"), a.listing.flows("vm1")) == before  # nothing changed
    assert t.flow == f"udp {VM1[2]}:1000 -> {VM4[2]}:53"
    assert [(s.layer, s.rule_id) for s in t.steps if s.rule_id != "-"] == [
        ("ACL_NIC", "default-allow-vnet-out"),
        ("ACL_SUBNET", "default-allow-vnet-out"),
        ("VNET", "route"),
    ]
    ops = [(op.op, op.header) for op in t.transposition.ops]
    assert ops == [
        ("modify", "ethernet"),
        ("modify", "ip"),
        ("modify", "metadata"),
        ("push", "vxlan"),
    ]
    assert t.result == f"transmit from PA {PA_A} to PA {PA_B}"
    text = "\n".join(t.lines())
    assert "VNET/out-v4: rule route (priority 1) route(router_mac=40:1d:d8:b7:1c:06)" in text
    assert "push vxlan(src=192.168.1.10, dst=192.168.1.20, vsid=5002" in text


def test_trace_of_a_denied_packet_and_of_a_local_delivery() -> None:
    a = host(PA_A, MAC_A)
    a.programming.apply(
        c.AddRule(
            "vm5", "ACL_SUBNET", "in-v4", Rule("no-dns", 100, conditions(dst_ports=[53]), Block())
        )
    )
    t = a.listing.trace("vm1", OUT, udp_frame(VM1[1], VM5[1], VM1[2], VM5[2]))
    assert t.result == "deliver to port vm5"
    assert t.then is not None
    assert t.then.port == "vm5"
    assert t.then.result == "drop(acl_deny)"
    assert ("ACL_SUBNET", "no-dns") in [(s.layer, s.rule_id) for s in t.then.steps]


def test_trace_from_the_uplink_follows_into_the_port() -> None:
    a, b = host(PA_A, MAC_A), host(PA_B, MAC_B)
    tx = a.process("vm1", udp_frame(VM1[1], VM2[1], VM1[2], VM2[2]), 0.0)[0]
    assert isinstance(tx, Transmit)
    t = b.listing.trace(UPLINK, "in", tx.frame)
    assert t.result == "decapsulate to port vm2"
    assert t.transposition.describe() == "pop vxlan(vsid=5001)"
    assert t.then is not None
    assert t.then.result == "deliver to port vm2"
    assert b.listing.counters(UPLINK)["packets_in"] == 0


def test_listings_are_plain_data() -> None:
    a = host(PA_A, MAC_A)
    a.process("vm1", udp_frame(VM1[1], VM2[1], VM1[2], VM2[2]), 0.0)
    assert [p["name"] for p in a.listing.ports()] == ["vm1", "vm3", "vm5"]
    assert [x["name"] for x in a.listing.layers("vm1")] == ["ACL_NIC", "ACL_SUBNET", "VNET"]
    assert {g["name"] for g in a.listing.groups("vm1", "ACL_NIC")} == {"in-v4", "out-v4"}
    rules = a.listing.rules("vm1", "ACL_NIC", "out-v4")
    assert [r["rule_id"] for r in rules] == [
        "default-allow-vnet-out",
        "default-allow-internet-out",
        "default-deny-out",
    ]
    assert rules[0]["matches"] == 1
    assert {m["customer_address"] for m in a.listing.mappings() if m["local"]} == {
        "10.1.1.11",
        "10.1.2.13",
        "10.1.1.15",
    }
    assert {s["rdid"] for s in a.listing.spaces()} == {"rdid-contoso", "rdid-fabrikam"}
    assert a.listing.provider_addresses()[0]["address"] == PA_A
    (flow,) = a.listing.flows("vm1")
    assert flow["flow"].startswith(f"udp {VM1[2]}:1000 -> {VM2[2]}:53")
    assert flow["result"] == f"transmit from PA {PA_A} to PA {PA_B}"
    assert a.listing.counters("vm1")["flow_setups"] == 1
    assert {
        "layer": "VNET",
        "group": "out-v4",
        "rule_id": "l2",
        "matches": 1,
    } in a.listing.rule_counters("vm1")
