"""Frames for hnv trace: MACs, PAs and VSIDs filled in from the engine."""

from __future__ import annotations

import ipaddress

import pytest
from host_fixtures import host_a
from vfp_frames import CONTOSO, PA_A, PA_B, ROUTER, VM1, VM2

from openhnv.host.errors import FrameSpecError
from openhnv.host.frame_spec import parse_description
from openhnv.host.tracing import OUTER_SOURCE_MAC, trace_frame, uplink_frame, vm_port
from openhnv.packet.flowkey import parse_flow_key
from openhnv.packet.frames import decapsulate
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.errors import PolicyError


def engine() -> VfpEngine:
    switch, _ = host_a()
    return switch.engine


def ip(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def test_outbound_takes_the_port_mac_and_the_peer_in_the_vsid() -> None:
    frame = trace_frame(
        engine(), "vm1", "out", parse_description(["src=10.1.1.11", "dst=10.1.1.12"])
    )
    key = parse_flow_key(frame)
    assert (key.src_mac, key.dst_mac) == (VM1[1], VM2[1])


def test_outbound_to_another_subnet_goes_to_the_router() -> None:
    frame = trace_frame(
        engine(), "vm1", "out", parse_description(["src=10.1.1.11", "dst=10.1.2.14"])
    )
    assert parse_flow_key(frame).dst_mac == ROUTER


def test_inbound_comes_from_the_peer_to_the_port() -> None:
    frame = trace_frame(
        engine(), "vm1", "in", parse_description(["src=10.1.1.12", "dst=10.1.1.11"])
    )
    key = parse_flow_key(frame)
    assert (key.src_mac, key.dst_mac) == (VM2[1], VM1[1])


def test_given_macs_win() -> None:
    tokens = ["src=10.1.1.11", "dst=10.1.1.12", "smac=02:00:00:00:00:99", "dmac=02:00:00:00:00:98"]
    key = parse_flow_key(trace_frame(engine(), "vm1", "out", parse_description(tokens)))
    assert (key.src_mac, key.dst_mac) == ("02:00:00:00:00:99", "02:00:00:00:00:98")


def test_uplink_frame_between_the_cas_pas() -> None:
    e = engine()
    tokens = ["src=10.1.1.12", "dst=10.1.1.11", f"rdid={CONTOSO}", "proto=udp"]
    tunnel = decapsulate(uplink_frame(e, parse_description(tokens)))
    assert (tunnel.outer_ip.src, tunnel.outer_ip.dst) == (ip(PA_B), ip(PA_A))
    assert tunnel.outer.src == mac(OUTER_SOURCE_MAC)
    assert tunnel.outer.dst == mac(e.state.provider_addresses[PA_A].mac)
    assert tunnel.vsid == 5001
    assert tunnel.encapsulation == "vxlan"
    inner = parse_flow_key(tunnel.inner)
    assert (inner.src_mac, inner.dst_mac) == (VM2[1], VM1[1])


def test_uplink_frame_overrides() -> None:
    tokens = ["src=10.1.1.12", "dst=10.1.1.11", "vsid=5001", "encap=nvgre",
              "outer_src=192.168.1.99"]  # fmt: skip
    tunnel = decapsulate(uplink_frame(engine(), parse_description(tokens)))
    assert tunnel.encapsulation == "nvgre"
    assert tunnel.vsid == 5001
    assert tunnel.outer_ip.src == ip("192.168.1.99")


def test_errors_name_what_is_missing() -> None:
    e = engine()
    with pytest.raises(PolicyError, match=r"port='vm9': no such port"):
        vm_port(e, "vm9")
    with pytest.raises(FrameSpecError, match=r"src=10\.9\.9\.9: no mapping in RDID"):
        uplink_frame(e, parse_description(["src=10.9.9.9", "dst=10.1.1.11"]))
