"""The HNV layer layout: layer order and the default ACL rules (DESIGN.md §4)."""

from __future__ import annotations

from vfp_frames import MAC_A, PA_A, ROUTER, VM1, VM5, host, udp_frame

from openhnv.vfp import commands as c
from openhnv.vfp.policy import IN, OUT, Allow, Block, Rule, conditions


def acl_steps(trace_steps: tuple[object, ...]) -> list[tuple[str, str]]:
    return [(s.layer, s.rule_id) for s in trace_steps if s.rule_id != "-"]  # type: ignore[attr-defined]


def test_outbound_to_the_internet_is_allowed_by_default() -> None:
    a = host(PA_A, MAC_A)
    t = a.listing.trace("vm1", OUT, udp_frame(VM1[1], ROUTER, VM1[2], "8.8.8.8"))
    assert acl_steps(t.steps)[:2] == [
        ("ACL_NIC", "default-allow-internet-out"),
        ("ACL_SUBNET", "default-allow-internet-out"),
    ]
    assert t.result == "drop(no_mapping)"  # no gateway in this VNet


def test_inbound_from_the_internet_is_blocked_by_default() -> None:
    a = host(PA_A, MAC_A)
    t = a.listing.trace("vm1", IN, udp_frame("00:1d:d8:00:00:99", VM1[1], "8.8.8.8", VM1[2]))
    assert acl_steps(t.steps) == [("ACL_SUBNET", "default-deny-in")]  # inbound: subnet first
    assert t.result == "drop(acl_deny)"


def test_both_acls_must_allow_nic_first_outbound() -> None:
    a = host(PA_A, MAC_A)
    a.programming.apply(
        c.AddRule(
            "vm1",
            "ACL_SUBNET",
            "out-v4",
            Rule("no-5", 100, conditions(dst_prefixes=[VM5[2]]), Block()),
        )
    )
    a.programming.apply(
        c.AddRule(
            "vm1",
            "ACL_NIC",
            "out-v4",
            Rule("yes-5", 100, conditions(dst_prefixes=[VM5[2]]), Allow()),
        )
    )
    t = a.listing.trace("vm1", OUT, udp_frame(VM1[1], VM5[1], VM1[2], VM5[2]))
    assert acl_steps(t.steps) == [("ACL_NIC", "yes-5"), ("ACL_SUBNET", "no-5")]
    assert t.result == "drop(acl_deny)"
    assert [x["name"] for x in a.listing.layers("vm1")] == ["ACL_NIC", "ACL_SUBNET", "VNET"]
    assert {(g["name"], g["direction"]) for g in a.listing.groups("vm1", "ACL_SUBNET")} == {
        ("in-v4", IN),
        ("out-v4", OUT),
    }
