"""Connection origins (docs/vfp.md "Connection origins", ``lifecycle.opens``): which packet
opens a stateful connection. A TCP connection opens on a SYN without ACK; a mid-stream
segment is judged by the rules as a new packet and lets no reply in; UDP and ICMP open on
any packet; what a replay makes afresh from a key (the fast path's adopted entries) opens."""

from __future__ import annotations

from vfp_frames import MAC_A, PA_A, VM1, VM5, host, tcp_frame, udp_frame

from openhnv.vfp import commands as c
from openhnv.vfp.emits import Deliver, Drop
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.policy import IN, OUT, Block, Direction, Rule, conditions

SYN, SYN_ACK, ACK = 0x02, 0x12, 0x10
IDLE = 60.0
# VM1 may not start anything toward VM5 (outbound denied); VM5 may reach VM1 (the VNet's
# default rules allow inbound). VM5 lives on the same host: frames are delivered locally.
DENY_OUT_TO_VM5: list[tuple[Direction, Rule]] = [
    (OUT, Rule("deny-out-vm5", 100, conditions(dst_prefixes=[f"{VM5[2]}/32"]), Block()))
]
DENY_IN = Rule("deny-all-in", 100, conditions(), Block())


def from_vm5(sport: int, flags: int) -> bytes:
    return tcp_frame(VM5[1], VM1[1], VM5[2], VM1[2], sport, 22, flags=flags)


def from_vm1(dport: int, flags: int) -> bytes:
    return tcp_frame(VM1[1], VM5[1], VM1[2], VM5[2], 22, dport, flags=flags)


def vm1_denying_out() -> VfpEngine:
    return host(PA_A, MAC_A, idle=IDLE, nic_acl=DENY_OUT_TO_VM5)


def test_a_peers_mid_stream_ack_passes_its_rules_but_lets_no_reply_out() -> None:
    a = vm1_denying_out()
    ack = from_vm5(4000, ACK)
    assert a.process("vm5", ack, 0.0) == [Deliver("vm1", ack)]  # inbound allowed: a new packet
    assert a.process("vm1", from_vm1(4000, ACK), 0.0) == [Drop("vm1", "acl_deny")]
    assert a.connection_states("vm1") == []  # nothing a migration would carry


def test_a_syn_opens_the_connection_and_its_replies_pass() -> None:
    a = vm1_denying_out()
    syn = from_vm5(4001, SYN)
    assert a.process("vm5", syn, 0.0) == [Deliver("vm1", syn)]
    synack = from_vm1(4001, SYN_ACK)
    assert a.process("vm1", synack, 0.0) == [Deliver("vm5", synack)]
    assert [s.direction for s in a.connection_states("vm1")] == [IN]


def test_after_the_connection_expired_a_mid_stream_ack_does_not_open_it_again() -> None:
    a = vm1_denying_out()
    assert a.process("vm5", from_vm5(4002, SYN), 0.0)[0].__class__ is Deliver
    reply = from_vm1(4002, ACK)
    assert a.process("vm1", reply, 0.0) == [Deliver("vm5", reply)]
    assert a.expire(IDLE + 1) > 0  # the pair went idle
    late = from_vm5(4002, ACK)
    assert a.process("vm5", late, IDLE + 2) == [Deliver("vm1", late)]
    assert a.process("vm1", reply, IDLE + 2) == [Drop("vm1", "acl_deny")]


def test_a_syn_on_the_ports_of_a_mid_stream_flow_opens_a_new_connection() -> None:
    a = vm1_denying_out()
    a.process("vm5", from_vm5(4003, ACK), 0.0)
    assert a.process("vm1", from_vm1(4003, ACK), 0.0) == [Drop("vm1", "acl_deny")]
    assert a.process("vm5", from_vm5(4003, SYN), 1.0) == [Deliver("vm1", from_vm5(4003, SYN))]
    synack = from_vm1(4003, SYN_ACK)
    assert a.process("vm1", synack, 1.0) == [Deliver("vm5", synack)]  # the cached drop went


def test_udp_opens_on_any_packet() -> None:
    a = vm1_denying_out()
    hello = udp_frame(VM5[1], VM1[1], VM5[2], VM1[2], sport=5000, dport=53)
    answer = udp_frame(VM1[1], VM5[1], VM1[2], VM5[2], sport=53, dport=5000)
    assert a.process("vm5", hello, 0.0) == [Deliver("vm1", hello)]
    assert a.process("vm1", answer, 0.0) == [Deliver("vm5", answer)]


def test_mid_stream_flows_both_ways_allowed_pair_up_without_a_connection() -> None:
    a = host(PA_A, MAC_A)
    out, back = from_vm1(4004, ACK), from_vm5(4004, ACK)
    assert a.process("vm1", out, 0.0) == [Deliver("vm5", out)]
    assert a.process("vm5", back, 0.0) == [Deliver("vm1", back)]
    assert {f["direction"] for f in a.listing.flows("vm1") if f["paired"]} == {"in", "out"}
    assert a.connection_states("vm1") == []
    a.programming.apply(c.AddRule("vm1", "ACL_NIC", "in-v4", DENY_IN))
    a.revalidate(a.state.port("vm1").outbound)  # decided again: still opened by nothing
    assert a.process("vm5", back, 1.0) == [Drop("vm1", "acl_deny")]


def test_a_replay_from_a_key_opens_what_it_makes_afresh() -> None:
    """A restarted host's fast path kept an established connection's entries: deciding
    them again from their keys (ACK-only frames) must let its replies in."""
    a = host(PA_A, MAC_A)
    a.programming.apply(c.AddRule("vm1", "ACL_NIC", "in-v4", DENY_IN))
    out = from_vm1(4005, ACK)
    a.replay("vm1", out)
    back = from_vm5(4005, ACK)
    assert a.process("vm5", back, 0.0) == [Deliver("vm1", back)]
    assert [s.direction for s in a.connection_states("vm1")] == [OUT]


def test_a_vms_mid_stream_segment_lets_no_reply_through_an_inbound_deny() -> None:
    """A fresh engine (a restart without the fast path) sees VM1's segment first."""
    a = host(PA_A, MAC_A)
    a.programming.apply(c.AddRule("vm1", "ACL_NIC", "in-v4", DENY_IN))
    out = from_vm1(4006, ACK)
    assert a.process("vm1", out, 0.0) == [Deliver("vm5", out)]
    assert a.process("vm5", from_vm5(4006, ACK), 0.0) == [Drop("vm1", "acl_deny")]
