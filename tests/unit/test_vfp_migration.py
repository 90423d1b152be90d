"""Live migration's connection table: what a VM port's stateful ACL lets through once the
port lives on another host, with and without the connections carried over."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from vfp_frames import MAC_A, MAC_B, PA_A, PA_B, ROUTER, VM1, VM2, host, tcp_frame

from openhnv.vfp import commands as c
from openhnv.vfp.emits import UPLINK, Deliver, Drop, Transmit
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.layout import hnv_port_commands
from openhnv.vfp.migration import ConnectionState, from_wire, to_wire
from openhnv.vfp.policy import IN, OUT, Block, Direction, Rule, conditions
from openhnv.vfp.spaces import Mapping

DENY_IN: list[tuple[Direction, Rule]] = [(IN, Rule("deny-all-in", 100, conditions(), Block()))]
DENY_ALL = [*DENY_IN, (OUT, Rule("deny-all-out", 100, conditions(), Block()))]
ACK = 0x10
SYN, SYN_ACK, FIN_ACK = 0x02, 0x12, 0x11


def _vm1_connected_to_vm2(flags: int = ACK) -> VfpEngine:
    """Host A, where VM1 (inbound denied) opened TCP 5555 -> VM2:80 on host B."""
    a, b = host(PA_A, MAC_A, nic_acl=DENY_IN), host(PA_B, MAC_B)
    syn = tcp_frame(VM1[1], VM2[1], VM1[2], VM2[2], 5555, 80, flags=SYN)
    assert isinstance(a.process("vm1", syn, 0.0)[0], Transmit)
    back = b.process("vm2", tcp_frame(VM2[1], VM1[1], VM2[2], VM1[2], 80, 5555, flags=SYN_ACK))
    assert isinstance(back[0], Transmit)
    assert isinstance(a.process(UPLINK, back[0].frame, 0.0)[0], Deliver)
    if flags != ACK:
        a.process("vm1", tcp_frame(VM1[1], VM2[1], VM1[2], VM2[2], 5555, 80, flags=flags))
    return a


def _b_after_vm1_moved_in(acl: Sequence[tuple[Direction, Rule]]) -> VfpEngine:
    """Host B once VM1's port was created there and its mapping points at B's PA."""
    b = host(PA_B, MAC_B)
    b.programming.apply(c.AddMapping(Mapping(str(VM1[4]), str(VM1[2]), PA_B, str(VM1[1]), 5001)))
    port = c.AddPort("vm1", str(VM1[1]), 5001, str(VM1[4]), (str(VM1[2]),))
    b.programming.apply_all(
        hnv_port_commands(port, router_mac=ROUTER, vnet_prefixes=["10.1.0.0/16"], nic_acl=acl)
    )
    return b


# VM2's next segment of the connection VM1 opened: an ACK, what follows a migration.
MID_STREAM = tcp_frame(VM2[1], VM1[1], VM2[2], VM1[2], 80, 5555, flags=ACK)


def test_a_fresh_port_drops_the_peers_mid_stream_ack_of_a_vm_initiated_connection() -> None:
    b = _b_after_vm1_moved_in(DENY_IN)
    assert b.process("vm2", MID_STREAM, 1.0) == [Drop("vm1", "acl_deny")]


def test_adopted_connections_let_the_peers_mid_stream_ack_through() -> None:
    states = _vm1_connected_to_vm2().connection_states("vm1")
    assert [(s.direction, s.closing) for s in states] == [(OUT, False)]
    b = _b_after_vm1_moved_in(DENY_IN)
    assert b.adopt_connections("vm1", from_wire(to_wire(states)), 1.0) == 1
    assert b.process("vm2", MID_STREAM, 1.0) == [Deliver("vm1", MID_STREAM)]
    counters = b.listing.counters("vm1")
    assert counters["connections"] == 1
    assert counters["connections_adopted"] == 1
    assert counters["packets_out"] == 0  # adopting moved no packet
    # an unrelated connection from VM2 is still denied
    other = tcp_frame(VM2[1], VM1[1], VM2[2], VM1[2], 81, 6000, flags=SYN)
    assert b.process("vm2", other, 1.0) == [Drop("vm1", "acl_deny")]


def test_the_destinations_policy_decides_adopted_connections_again() -> None:
    states = _vm1_connected_to_vm2().connection_states("vm1")
    b = _b_after_vm1_moved_in(DENY_ALL)  # outbound denied there too: nothing to adopt
    assert b.adopt_connections("vm1", states, 1.0) == 0
    assert b.process("vm2", MID_STREAM, 1.0) == [Drop("vm1", "acl_deny")]
    assert b.listing.counters("vm1").get("drop:acl_deny") == 1  # the packet's, not the adoption's


def test_a_closing_connection_stays_closing_on_the_destination() -> None:
    states = _vm1_connected_to_vm2(FIN_ACK).connection_states("vm1")
    assert [s.closing for s in states] == [True]
    b = _b_after_vm1_moved_in(DENY_IN)
    assert b.adopt_connections("vm1", states, 1.0) == 1
    assert {f["closing"] for f in b.listing.flows("vm1")} == {True}


def test_keys_without_a_frame_form_are_skipped() -> None:
    b = _b_after_vm1_moved_in(DENY_IN)
    assert b.adopt_connections("vm1", [ConnectionState(OUT, b"\x01\x02\x03")], 1.0) == 0


@pytest.mark.parametrize(
    ("wire", "field"),
    [
        ("nope", "connections"),
        ([1], "connections[0]"),
        ([{"direction": "up", "key": "00"}], "connections[0].direction"),
        ([{"direction": "in", "key": "zz"}], "connections[0].key"),
        ([{"direction": "in", "key": ""}], "connections[0].key"),
        ([{"direction": "in", "key": "00", "closing": "yes"}], "connections[0].closing"),
    ],
)
def test_bad_wire_forms_name_the_field(wire: object, field: str) -> None:
    with pytest.raises(PolicyError) as caught:
        from_wire(wire)
    assert caught.value.field == field


def test_a_connection_the_peer_opened_moves_too() -> None:
    """VM2 connected to VM1 (inbound allowed); at the destination VM1's outbound is
    denied, so VM1's next segment passes only as a reply of the moved connection."""
    a = host(PA_A, MAC_A)
    b = host(PA_B, MAC_B)
    syn = b.process("vm2", tcp_frame(VM2[1], VM1[1], VM2[2], VM1[2], 6000, 22, flags=SYN))
    assert isinstance(syn[0], Transmit)
    assert isinstance(a.process(UPLINK, syn[0].frame, 0.0)[0], Deliver)
    states = a.connection_states("vm1")
    assert [s.direction for s in states] == [IN]
    deny_out: list[tuple[Direction, Rule]] = [(OUT, Rule("deny-out", 100, conditions(), Block()))]
    segment = tcp_frame(VM1[1], VM2[1], VM1[2], VM2[2], 22, 6000, flags=ACK)
    fresh = _b_after_vm1_moved_in(deny_out)
    assert fresh.process("vm1", segment, 1.0) == [Drop("vm1", "acl_deny")]
    moved = _b_after_vm1_moved_in(deny_out)
    assert moved.adopt_connections("vm1", states, 1.0) == 1
    assert moved.process("vm1", segment, 1.0) == [Deliver("vm2", segment)]


def test_a_mid_stream_connection_is_not_exported() -> None:
    """VM1's segment on a connection no SYN opened here (after the pair expired, or a
    restart without the fast path): nothing tells who opened it, so nothing moves."""
    a = host(PA_A, MAC_A)
    a.process("vm1", tcp_frame(VM1[1], VM2[1], VM1[2], VM2[2], 5555, 80, flags=ACK), 0.0)
    assert a.connection_states("vm1") == []


def test_the_import_wins_over_the_peers_mid_stream_packet_that_came_first() -> None:
    """The peer's ACK reached the destination before the import (inbound allowed there):
    the imported connection is the VM's, so an inbound deny added later still lets the
    peer's segments in as its replies."""
    states = _vm1_connected_to_vm2().connection_states("vm1")
    b = _b_after_vm1_moved_in([])
    assert b.process("vm2", MID_STREAM, 1.0) == [Deliver("vm1", MID_STREAM)]
    assert b.adopt_connections("vm1", states, 1.0) == 1
    assert [s.direction for s in b.connection_states("vm1")] == [OUT]
    b.programming.apply(c.AddRule("vm1", "ACL_NIC", "in-v4", DENY_IN[0][1]))
    assert b.process("vm2", MID_STREAM, 2.0) == [Deliver("vm1", MID_STREAM)]
