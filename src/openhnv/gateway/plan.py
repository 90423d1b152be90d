"""What a compartment is made of, computed from its rows (pure; ``manager`` builds it).

A compartment is a network namespace ``<prefix><name>`` with:

- ``eth0``, its NIC in the VNet: a veth whose other end, in the gateway host, carries
  the ifalias ``openhnv-port <port-id> <mac>`` so the host's vSwitch takes it as the
  NIC's port (the controller published the NIC's mapping like any NIC's); the
  compartment's address in the gateway subnet, the VNet's address space routed through
  the distributed router (the subnet's lowest address);
- one leg per external network its connections use (``ext0``, ``ext1``, ...): an
  untagged leg is a macvlan on the host's external interface; a VLAN leg is a veth whose
  host end an access-port relay (``vswitch.accessport``) joins to the external interface
  as a trunk, tagging and untagging the VLAN;
- routes: a Nat connection's default route through its leg's gateway, an L3
  connection's routes through its first peer (IPsec routes are charon's, table 220);
- the ruleset of ``nft`` and, with IPSec connections, the files of a charon.

Names on the host are ``g<8 hex of the name's CRC>`` plus a role, short enough for
interface names (15 bytes). ``Layout.digest`` of each part tells the manager what
changed: the base (namespace, NIC, VNet routes), the legs and routes, the ruleset, the
tunnel configuration.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import zlib
from dataclasses import dataclass

from openhnv.gateway.ipsec import IpsecFiles, ipsec_files
from openhnv.gateway.nft import Firewall, NatLeg, ruleset
from openhnv.gateway.rows import CompartmentSpec, ConnectionSpec

VNET_INTERFACE = "eth0"
LEG_PREFIX = "ext"
MTU = 1500
NAMESPACE_MAX = 64


def short_id(name: str) -> str:
    """8 hex digits naming a compartment on the host (interface names)."""
    return f"{zlib.crc32(name.encode()):08x}"


def namespace_of(prefix: str, name: str) -> str:
    """The compartment's namespace: the prefix and a sanitized, bounded name."""
    clean = "".join(c if c.isalnum() or c in "-_." else "-" for c in name.lower())
    if len(prefix) + len(clean) > NAMESPACE_MAX:
        clean = clean[: NAMESPACE_MAX - len(prefix) - 9] + "-" + short_id(name)
    return prefix + clean


@dataclass(frozen=True, slots=True)
class LegPlan:
    inside: str  # the interface in the compartment, ext<i>
    parent: str  # the host's external interface
    vlan: int  # 0: a macvlan on the parent; else a veth + access-port relay
    host_side: str  # VLAN legs: the veth end the relay serves
    addresses: tuple[ipaddress.IPv4Interface, ...]

    @property
    def relayed(self) -> bool:
        return self.vlan != 0


@dataclass(frozen=True, slots=True)
class Route:
    prefix: str  # "default" or a CIDR
    via: str | None
    device: str


@dataclass(frozen=True, slots=True)
class Layout:
    spec: CompartmentSpec
    namespace: str
    vnet_host_side: str
    legs: tuple[LegPlan, ...]
    routes: tuple[Route, ...]
    ruleset: str
    ipsec: IpsecFiles | None

    @property
    def port_alias(self) -> str:
        return f"openhnv-port {self.spec.port} {self.spec.mac}"

    def digest(self, part: str) -> str:
        """A digest of ``base``, ``legs``, ``nft`` or ``ipsec``: equal means unchanged."""
        spec = self.spec
        parts = {
            "base": [self.namespace, self.vnet_host_side, spec.port, spec.mac,
                     str(spec.address), str(spec.router), [str(n) for n in spec.address_space]],
            "legs": [[leg.inside, leg.parent, leg.vlan, leg.host_side,
                      [str(a) for a in leg.addresses]] for leg in self.legs]
                    + [[r.prefix, r.via, r.device] for r in self.routes],
            "nft": self.ruleset,
            "ipsec": None if self.ipsec is None else [
                self.ipsec.strongswan_conf, self.ipsec.swanctl_conf,
                sorted(self.ipsec.credentials.items()),
            ],
        }  # fmt: skip
        text = json.dumps(parts[part], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def layout(spec: CompartmentSpec, prefix: str) -> Layout:
    """The compartment for ``spec``, its namespace named with ``prefix``."""
    short = short_id(spec.name)
    legs: dict[tuple[str, int], LegPlan] = {}
    routes: list[Route] = [
        Route(str(net), str(spec.router), VNET_INTERFACE) for net in spec.address_space
    ]
    for conn in spec.connections:
        key = (conn.leg.interface, conn.leg.vlan)
        if key not in legs:
            index = len(legs)
            legs[key] = LegPlan(
                inside=f"{LEG_PREFIX}{index}",
                parent=conn.leg.interface,
                vlan=conn.leg.vlan,
                host_side=f"g{short}a{index}" if conn.leg.vlan else "",
                addresses=(),
            )
        leg = legs[key]
        merged = tuple(sorted(set(leg.addresses) | set(conn.addresses), key=str))
        legs[key] = LegPlan(leg.inside, leg.parent, leg.vlan, leg.host_side, merged)
        routes += _routes(conn, leg.inside)
    leg_of = {key: leg.inside for key, leg in legs.items()}
    tunnels = [c for c in spec.connections if c.kind == "IPSec"]
    return Layout(
        spec=spec,
        namespace=namespace_of(prefix, spec.name),
        vnet_host_side=f"g{short}v",
        legs=tuple(legs.values()),
        routes=tuple(routes),
        ruleset=ruleset(_firewall(spec, leg_of)),
        ipsec=ipsec_files(tunnels, [str(n) for n in spec.address_space]),
    )


def _routes(conn: ConnectionSpec, device: str) -> list[Route]:
    if conn.kind == "Nat":
        gateway = conn.leg.gateway
        return [Route("default", str(gateway) if gateway else None, device)]
    if conn.kind == "L3" and conn.peers:
        return [Route(str(p), str(conn.peers[0]), device) for p in conn.routes]
    return []  # IPSec: charon routes the remote prefixes into ipsec0


def _firewall(spec: CompartmentSpec, leg_of: dict[tuple[str, int], str]) -> Firewall:
    nat: NatLeg | None = None
    routed: list[str] = []
    tunnel_legs: list[str] = []
    for conn in spec.connections:
        leg = leg_of[(conn.leg.interface, conn.leg.vlan)]
        if conn.kind == "Nat":
            nat = NatLeg(leg, conn.addresses[0].ip, conn.port_mappings)
        elif conn.kind == "L3":
            routed.append(leg)
        else:
            tunnel_legs.append(leg)
    return Firewall(
        vnet_interface=VNET_INTERFACE,
        address_space=spec.address_space,
        nat=nat,
        routed_legs=tuple(sorted(set(routed))),
        tunnel_legs=tuple(sorted(set(tunnel_legs))),
        tunnel=bool(tunnel_legs),
    )
