"""The frames ``hnv trace`` runs through the engine, built from a ``FrameSpec`` and the engine.

Pure functions of the engine's state (call them under ``HostSwitch.inspect``): what the
description leaves out comes from the port (its MAC), the mapping space (the peer CA's
MAC in the same VSID, else the distributed router's MAC as the port's VNET layer routes
to it) and, for a frame from the uplink, the mappings of both CAs (PAs, VSID,
encapsulation). ``FrameSpecError`` says what is missing.
"""

from __future__ import annotations

import ipaddress

from openhnv.host.errors import FrameSpecError
from openhnv.host.frame_spec import DEFAULT_DESTINATION_PORT, DEFAULT_SOURCE_PORT, FrameSpec
from openhnv.packet.frames import (
    icmp_echo_frame,
    nvgre_encapsulate,
    tcp_frame,
    udp_frame,
    vxlan_encapsulate,
)
from openhnv.packet.vxlan import VXLAN_SOURCE_PORT_MIN
from openhnv.vfp.emits import UPLINK
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.model import Port
from openhnv.vfp.policy import Route
from openhnv.vfp.spaces import Mapping

DEFAULT_ROUTER_MAC = "40:1d:d8:b7:1c:06"  # docs/southbound.md: Global.other_config default
OUTER_SOURCE_MAC = "02:00:00:00:00:01"  # the PA router's MAC in an uplink trace, unless given
NVGRE_FLOW_ID = 0


def vm_port(engine: VfpEngine, name: str) -> Port:
    """The VM port ``name``, or an error listing the ports there are."""
    port = engine.state.ports.get(name)
    if port is None:
        known = ", ".join(sorted(engine.state.ports)) or "none"
        raise PolicyError("port", name, f"no such port (ports: {known}; or uplink)")
    return port


def router_mac(port: Port) -> str:
    """The distributed router's MAC as the port's VNET layer routes to it."""
    for layer in port.layers.values():
        for group in layer.groups.values():
            for rule in group.rules.values():
                if isinstance(rule.action, Route):
                    return rule.action.router_mac
    return DEFAULT_ROUTER_MAC


def _peer_mac(engine: VfpEngine, port: Port, address: str) -> str:
    """The MAC a frame between ``port`` and CA ``address`` carries on the VM's side."""
    m = engine.state.mappings.by_ip(port.rdid, ipaddress.ip_address(address))
    if m is not None and m.vsid == port.vsid:
        return m.customer_mac
    return router_mac(port)


def _inner_frame(spec: FrameSpec, src_mac: str, dst_mac: str) -> bytes:
    if spec.protocol_name in ("tcp", "udp"):
        sport = spec.src_port if spec.src_port is not None else DEFAULT_SOURCE_PORT
        dport = spec.dst_port if spec.dst_port is not None else DEFAULT_DESTINATION_PORT
        if spec.protocol_name == "tcp":
            return tcp_frame(
                src_mac=src_mac, dst_mac=dst_mac, src_ip=spec.src, dst_ip=spec.dst,
                src_port=sport, dst_port=dport, flags=spec.tcp_flags, ttl=spec.ttl,
            )  # fmt: skip
        return udp_frame(
            src_mac=src_mac, dst_mac=dst_mac, src_ip=spec.src, dst_ip=spec.dst,
            src_port=sport, dst_port=dport, ttl=spec.ttl,
        )  # fmt: skip
    return icmp_echo_frame(
        src_mac=src_mac, dst_mac=dst_mac, src_ip=spec.src, dst_ip=spec.dst, ttl=spec.ttl
    )


def _local_destination(engine: VfpEngine, spec: FrameSpec) -> Mapping:
    local = engine.state.provider_addresses
    address = ipaddress.ip_address(spec.dst)
    found = [
        m
        for m in engine.state.mappings.all()
        if ipaddress.ip_address(m.customer_address) == address
        and (spec.rdid is None or m.rdid == spec.rdid)
        and (spec.vsid is None or m.vsid == spec.vsid)
    ]
    mine = [m for m in found if m.provider_address in local] or found
    if not mine:
        raise FrameSpecError(
            f"dst={spec.dst}: no mapping for this CA on the host; give vsid=/rdid="
        )
    if len({m.rdid for m in mine}) > 1:
        rdids = ", ".join(sorted({m.rdid for m in mine}))
        raise FrameSpecError(f"dst={spec.dst} is a CA in several routing domains ({rdids}): "
                           "give rdid= or vsid=")  # fmt: skip
    return mine[0]


def _port_of_mac(engine: VfpEngine, mac: str) -> Port | None:
    return next((p for p in engine.state.ports.values() if p.mac == mac), None)


def uplink_frame(engine: VfpEngine, spec: FrameSpec) -> bytes:
    """The outer frame another host would send for ``spec`` to a local CA."""
    dst = _local_destination(engine, spec)
    src = engine.state.mappings.by_ip(dst.rdid, ipaddress.ip_address(spec.src))
    if spec.outer_src is not None:
        outer_src = spec.outer_src
    elif src is not None:
        outer_src = src.provider_address
    else:
        raise FrameSpecError(f"src={spec.src}: no mapping in RDID {dst.rdid}; give outer_src=PA")
    outer_dst = spec.outer_dst or dst.provider_address
    vsid = spec.vsid or dst.vsid
    local_pa = engine.state.provider_addresses.get(outer_dst)
    outer_dst_mac = local_pa.mac if local_pa is not None else OUTER_SOURCE_MAC
    if spec.src_mac is not None:
        inner_src_mac = spec.src_mac
    elif src is not None and src.vsid == dst.vsid:
        inner_src_mac = src.customer_mac
    else:  # routed by the sending host's distributed router
        dst_port = _port_of_mac(engine, dst.customer_mac)
        inner_src_mac = router_mac(dst_port) if dst_port is not None else DEFAULT_ROUTER_MAC
    inner = _inner_frame(spec, inner_src_mac, spec.dst_mac or dst.customer_mac)
    if (spec.encapsulation or dst.encapsulation) == "nvgre":
        return nvgre_encapsulate(
            inner, outer_src_mac=OUTER_SOURCE_MAC, outer_dst_mac=outer_dst_mac,
            src_pa=outer_src, dst_pa=outer_dst, vsid=vsid, flow_id=NVGRE_FLOW_ID,
        )  # fmt: skip
    return vxlan_encapsulate(
        inner, outer_src_mac=OUTER_SOURCE_MAC, outer_dst_mac=outer_dst_mac,
        src_pa=outer_src, dst_pa=outer_dst, vni=vsid, src_port=VXLAN_SOURCE_PORT_MIN,
    )  # fmt: skip


def trace_frame(engine: VfpEngine, port: str, direction: str, spec: FrameSpec) -> bytes:
    """The frame ``spec`` describes, crossing ``port`` in ``direction``, MACs filled in."""
    if port == UPLINK:
        return uplink_frame(engine, spec)
    p = vm_port(engine, port)
    if direction == "out":
        src_mac = spec.src_mac or p.mac
        dst_mac = spec.dst_mac or _peer_mac(engine, p, spec.dst)
    else:
        src_mac = spec.src_mac or _peer_mac(engine, p, spec.src)
        dst_mac = spec.dst_mac or p.mac
    return _inner_frame(spec, src_mac, dst_mac)
