"""A compartment's nftables ruleset: its firewall and its NAT (pure text, no I/O).

The compartment forwards only what its connections allow: the VNet out to each leg and
the tunnel, an L3 site and the tunnel back in, and, from the Internet, only replies and
the inbound port mappings; the compartment itself answers the VNet, IKE on a tunnel's
leg and pings from L3 peers. Everything else (unsolicited inbound above all) is dropped
by the chains' policies. Outbound NAT rewrites VNet sources leaving through the Nat
leg to the one public address; port mappings rewrite destinations coming in on it.
The kernel (conntrack, nf_nat) does the work; ``nft -f`` loads the text atomically.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from openhnv.gateway.rows import PortMapping

IKE_PORTS = (500, 4500)
TUNNEL_INTERFACE = "ipsec0"  # kernel-libipsec's TUN device


@dataclass(frozen=True, slots=True)
class NatLeg:
    interface: str
    public: ipaddress.IPv4Address
    port_mappings: tuple[PortMapping, ...] = ()


@dataclass(frozen=True, slots=True)
class Firewall:
    """What the ruleset is made from."""

    vnet_interface: str
    address_space: tuple[ipaddress.IPv4Network, ...]
    nat: NatLeg | None = None
    routed_legs: tuple[str, ...] = ()  # L3 legs: forwarded both ways
    tunnel_legs: tuple[str, ...] = ()  # legs that carry IKE/ESP-in-UDP to a tunnel
    tunnel: bool = False


def _set(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def ruleset(fw: Firewall) -> str:
    """The whole ruleset (replacing whatever the compartment held)."""
    vnet = f'"{fw.vnet_interface}"'
    space = _set([str(n) for n in fw.address_space])
    pre: list[str] = []
    post: list[str] = []
    forward = ["ct state established,related accept", "ct state invalid drop"]
    inbound = [
        "ct state established,related accept",
        'iifname "lo" accept',
        f"iifname {vnet} accept",
    ]
    if fw.nat is not None:
        leg = f'"{fw.nat.interface}"'
        post.append(f"oifname {leg} ip saddr {space} snat ip to {fw.nat.public}")
        forward.append(f"iifname {vnet} oifname {leg} accept")
        for m in fw.nat.port_mappings:
            pre.append(
                f"iifname {leg} ip daddr {fw.nat.public} {m.protocol} dport {m.frontend_port} "
                f"dnat ip to {m.backend}:{m.backend_port}"
            )
        if fw.nat.port_mappings:
            forward.append(f"iifname {leg} oifname {vnet} ct status dnat accept")
    for name in fw.routed_legs:
        forward.append(f'iifname {vnet} oifname "{name}" accept')
        forward.append(f'iifname "{name}" oifname {vnet} accept')
        inbound.append(f'iifname "{name}" ip protocol icmp accept')
    if fw.tunnel:
        tun = f'"{TUNNEL_INTERFACE}"'
        forward.insert(0, f"oifname {tun} tcp flags syn tcp option maxseg size set rt mtu")
        forward.append(f"iifname {vnet} oifname {tun} accept")
        forward.append(f"iifname {tun} oifname {vnet} accept")
        inbound.append(f"iifname {tun} ip protocol icmp accept")
        ports = _set([str(p) for p in IKE_PORTS])
        for name in fw.tunnel_legs:
            inbound.append(f'iifname "{name}" udp dport {ports} accept')
    lines = ["table inet hnv {"]
    lines += _chain("prerouting", "nat hook prerouting priority dstnat; policy accept;", pre)
    lines += _chain("postrouting", "nat hook postrouting priority srcnat; policy accept;", post)
    lines += _chain("forward", "filter hook forward priority filter; policy drop;", forward)
    lines += _chain("input", "filter hook input priority filter; policy drop;", inbound)
    lines.append("}")
    return "flush ruleset\n" + "\n".join(lines) + "\n"


def _chain(name: str, hook: str, rules: Sequence[str]) -> list[str]:
    return [f"  chain {name} {{", f"    type {hook}", *(f"    {r}" for r in rules), "  }"]
