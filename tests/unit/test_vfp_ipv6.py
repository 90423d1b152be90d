"""IPv6 customer addresses: L2 forwarding, routing with a hop-limit decrement, ACL groups."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence

from vfp_frames import CONTOSO, MAC_A, MAC_B, PA_A, PA_B, ROUTER, eth, mac, udp

from openhnv.vfp import commands as c
from openhnv.vfp.emits import UPLINK, Deliver, Drop, Transmit
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.layout import hnv_port_commands
from openhnv.vfp.policy import OUT, Block, Direction, Rule, conditions
from openhnv.vfp.spaces import Mapping, ProviderAddress

V1 = ("v1", "00:1d:d8:00:06:01", "fd00:1:1::11", 5001, PA_A)
V2 = ("v2", "00:1d:d8:00:06:02", "fd00:1:1::12", 5001, PA_B)
V3 = ("v3", "00:1d:d8:00:06:03", "fd00:1:2::13", 5002, PA_B)


def ipv6_udp(src_mac: str, dst_mac: str, src: str, dst: str, hop: int = 64) -> bytes:
    payload = udp(1000, 53)
    s, d = ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed
    head = struct.pack("!IHBB16s16s", 6 << 28, len(payload), 17, hop, s, d)
    return eth(dst_mac, src_mac, 0x86DD, head + payload)


def host(pa: str, pa_mac: str, nic_acl: Sequence[tuple[Direction, Rule]] = ()) -> VfpEngine:
    sw = VfpEngine(clock=lambda: 0.0)
    sw.programming.apply(c.AddProviderAddress(ProviderAddress(pa, pa_mac)))
    sw.programming.apply(
        c.SetPaNeighbor(PA_B if pa == PA_A else PA_A, MAC_B if pa == PA_A else MAC_A)
    )
    for name, vm_mac, ip, vsid, vm_pa in (V1, V2, V3):
        sw.programming.apply(c.AddMapping(Mapping(CONTOSO, ip, vm_pa, vm_mac, vsid)))
        if vm_pa == pa:
            port = c.AddPort(name, vm_mac, vsid, CONTOSO, (ip,))
            prefixes = ["10.1.0.0/16", "fd00:1::/32"]
            cmds = hnv_port_commands(
                port, router_mac=ROUTER, vnet_prefixes=prefixes, nic_acl=nic_acl, families=(4, 6)
            )
            sw.programming.apply_all(cmds)
    return sw


def test_ipv6_l2_across_hosts() -> None:
    a, b = host(PA_A, MAC_A), host(PA_B, MAC_B)
    frame = ipv6_udp(V1[1], V2[1], V1[2], V2[2])
    tx = a.process("v1", frame, 0.0)[0]
    assert isinstance(tx, Transmit)
    assert tx.provider_address == PA_B
    assert tx.frame[50:] == frame
    assert b.process(UPLINK, tx.frame, 0.0) == [Deliver("v2", frame)]


def test_ipv6_routing_decrements_the_hop_limit() -> None:
    a, b = host(PA_A, MAC_A), host(PA_B, MAC_B)
    frame = ipv6_udp(V1[1], ROUTER, V1[2], V3[2], hop=9)
    tx = a.process("v1", frame, 0.0)[0]
    assert isinstance(tx, Transmit)
    inner = tx.frame[50:]
    assert inner[0:12] == mac(V3[1]) + mac(ROUTER)
    assert inner[21] == 8
    assert tx.frame[46:49] == (5002).to_bytes(3, "big")
    assert b.process(UPLINK, tx.frame, 0.0) == [Deliver("v3", inner)]


def test_ipv6_acl_group() -> None:
    deny = [(OUT, Rule("deny-v2", 100, conditions(dst_prefixes=["fd00:1:1::12/128"]), Block()))]
    a = host(PA_A, MAC_A, nic_acl=deny)
    assert a.process("v1", ipv6_udp(V1[1], V2[1], V1[2], V2[2]), 0.0) == [Drop("v1", "acl_deny")]
    assert isinstance(a.process("v1", ipv6_udp(V1[1], ROUTER, V1[2], V3[2]), 0.0)[0], Transmit)
