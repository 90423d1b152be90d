"""The state of a flow's connection in the listings (``flow_state``): whether it was ever
answered, opened by a SYN or made by a mid-stream segment; the ``list-flows`` filter."""

from __future__ import annotations

import pytest
from vfp_frames import MAC_A, PA_A, VM1, VM2, VM5, host, tcp_frame, udp_frame

from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.listing import parse_states
from openhnv.vfp.policy import OUT, Block, Rule, conditions

SYN, SYN_ACK, ACK, FIN_ACK = 0x02, 0x12, 0x10, 0x11


def states(a: VfpEngine, port: str) -> dict[tuple[str, str], str]:
    return {(f["direction"], f["flow"].split(" ")[1]): f["state"] for f in a.listing.flows(port)}


def test_flows_show_whether_their_connection_was_ever_answered() -> None:
    a = host(PA_A, MAC_A)
    a.process("vm1", tcp_frame(VM1[1], VM5[1], VM1[2], VM5[2], 4000, 22, SYN), 0.0)
    assert states(a, "vm1") == {("out", f"{VM1[2]}:4000"): "syn-sent"}
    assert a.listing.counters("vm1")["connections:syn-sent"] == 1
    a.process("vm5", tcp_frame(VM5[1], VM1[1], VM5[2], VM1[2], 22, 4000, SYN_ACK), 0.0)
    assert states(a, "vm1") == {
        ("out", f"{VM1[2]}:4000"): "established",
        ("in", f"{VM5[2]}:22"): "established",
    }
    a.process("vm1", tcp_frame(VM1[1], VM5[1], VM1[2], VM5[2], 4000, 22, FIN_ACK), 0.0)
    assert set(states(a, "vm1").values()) == {"closing"}
    counters = a.listing.counters("vm1")
    assert (counters["connections"], counters["connections:closing"]) == (1, 1)
    assert "connections:syn-sent" not in counters


def test_a_mid_stream_flow_is_unopened_and_udp_waits_unreplied() -> None:
    a = host(PA_A, MAC_A)
    a.process("vm1", tcp_frame(VM1[1], VM5[1], VM1[2], VM5[2], 4001, 22, ACK), 0.0)
    a.process("vm1", udp_frame(VM1[1], VM2[1], VM1[2], VM2[2]), 0.0)
    assert states(a, "vm1") == {
        ("out", f"{VM1[2]}:4001"): "unopened",
        ("out", f"{VM1[2]}:1000"): "unreplied",
    }
    assert a.listing.counters("vm1")["connections:unopened"] == 1


def test_a_cached_drop_and_the_state_filter() -> None:
    a = host(PA_A, MAC_A, nic_acl=[(OUT, Rule("no-ssh", 100, conditions(dst_ports=[22]), Block()))])
    a.process("vm1", tcp_frame(VM1[1], VM5[1], VM1[2], VM5[2], 4002, 22, SYN), 0.0)
    a.process("vm1", tcp_frame(VM1[1], VM5[1], VM1[2], VM5[2], 4003, 80, SYN), 0.0)
    assert sorted(f["state"] for f in a.listing.flows("vm1")) == ["dropped", "syn-sent"]
    only = a.listing.flows("vm1", states=parse_states("dropped,established"))
    assert [f["flow"].split(" ")[3] for f in only] == [f"{VM5[2]}:22"]
    with pytest.raises(PolicyError, match="state='syn'"):
        parse_states("syn")
