"""Spaces: the CA->PA mapping space per routing domain, and the switch's own PAs.

A mapping says where a customer address lives: (RDID, CA IP) -> (PA, CA MAC, VSID,
encapsulation). The same mapping is found by (VSID, CA MAC) for L2 forwarding. A mapping
whose PA is one of this switch's own provider addresses is a local VM.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Literal, TypeAlias

from openhnv.vfp.errors import PolicyError
from openhnv.vfp.policy import check_vsid, normalize_mac, parse_address

Encapsulation: TypeAlias = Literal["vxlan", "nvgre"]
MIN_PA_MTU = 576  # RFC 791: every IPv4 host takes datagrams of 576 bytes
MAX_PA_MTU = 65535
ENCAPSULATIONS = ("vxlan", "nvgre")
IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Mapping:
    """One customer address: where it lives and how to reach it."""

    rdid: str
    customer_address: str
    provider_address: str
    customer_mac: str
    vsid: int
    encapsulation: Encapsulation = "vxlan"

    def __post_init__(self) -> None:
        if not isinstance(self.rdid, str) or not self.rdid:
            raise PolicyError("rdid", self.rdid, "a routing domain id is a non-empty string")
        ca = parse_address(self.customer_address, "customer_address")
        object.__setattr__(self, "customer_address", str(ca))
        pa = parse_address(self.provider_address, "provider_address")
        if pa.version != 4:
            raise PolicyError("provider_address", self.provider_address, "PAs are IPv4")
        object.__setattr__(self, "provider_address", str(pa))
        object.__setattr__(self, "customer_mac", normalize_mac(self.customer_mac, "customer_mac"))
        check_vsid(self.vsid)
        if self.encapsulation not in ENCAPSULATIONS:
            raise PolicyError("encapsulation", self.encapsulation, "vxlan or nvgre")


SUBNET_CACHE = 4096  # (local PA, remote PA) answers kept by ``ProviderAddress.on_link``


@dataclass(frozen=True, slots=True)
class ProviderAddress:
    """One PA of this switch (one per team member) and how to leave through it.

    ``gateway_mac`` is the next hop for PAs outside ``prefix_length``; ``vlan_id`` is the
    PA subnet's VLAN tag (None = untagged); ``mtu`` the largest IPv4 packet its uplink
    carries (None: unchecked), which bounds what can be encapsulated from it.
    """

    address: str
    mac: str
    prefix_length: int = 24
    vlan_id: int | None = None
    gateway_mac: str | None = None
    mtu: int | None = None

    def __post_init__(self) -> None:
        pa = parse_address(self.address, "address")
        if pa.version != 4:
            raise PolicyError("address", self.address, "PAs are IPv4")
        object.__setattr__(self, "address", str(pa))
        object.__setattr__(self, "mac", normalize_mac(self.mac, "mac"))
        if self.gateway_mac is not None:
            object.__setattr__(self, "gateway_mac", normalize_mac(self.gateway_mac, "gateway_mac"))
        if not isinstance(self.prefix_length, int) or not 0 <= self.prefix_length <= 32:
            raise PolicyError("prefix_length", self.prefix_length, "an int in 0..32")
        if self.vlan_id is not None and (
            not isinstance(self.vlan_id, int) or not 1 <= self.vlan_id <= 4094
        ):
            raise PolicyError("vlan_id", self.vlan_id, "a VLAN id is 1..4094 (None: untagged)")
        if self.mtu is not None and (
            not isinstance(self.mtu, int) or not MIN_PA_MTU <= self.mtu <= MAX_PA_MTU
        ):
            raise PolicyError(
                "mtu", self.mtu, f"an MTU is {MIN_PA_MTU}..{MAX_PA_MTU} (None: unchecked)"
            )

    def on_link(self, other: str) -> bool:
        """Whether PA ``other`` is in this PA's subnet (reached without the gateway)."""
        return _same_subnet(self.address, other, self.prefix_length)


class MappingSpace:
    """All mappings, by (RDID, CA IP) and by (VSID, CA MAC)."""

    __slots__ = ("_by_ip", "_by_mac", "_by_vsid")

    def __init__(self) -> None:
        self._by_ip: dict[tuple[str, IPAddress], Mapping] = {}
        self._by_mac: dict[tuple[int, str], Mapping] = {}
        self._by_vsid: dict[int, dict[tuple[str, str], Mapping]] = {}

    def add(self, m: Mapping) -> None:
        """Add or replace the mapping of (m.rdid, m.customer_address)."""
        self.remove(m.rdid, m.customer_address, missing_ok=True)
        mac_owner = self._by_mac.get((m.vsid, m.customer_mac))
        if mac_owner is not None and mac_owner.rdid != m.rdid:
            raise PolicyError(
                "customer_mac", m.customer_mac, f"already mapped in VSID {m.vsid} of another RDID"
            )
        self._by_ip[(m.rdid, ipaddress.ip_address(m.customer_address))] = m
        self._by_mac[(m.vsid, m.customer_mac)] = m
        self._by_vsid.setdefault(m.vsid, {})[(m.customer_address, m.customer_mac)] = m

    def remove(self, rdid: str, customer_address: str, *, missing_ok: bool = False) -> None:
        """Remove the mapping of (rdid, customer_address)."""
        ca = parse_address(customer_address, "customer_address")
        m = self._by_ip.pop((rdid, ca), None)
        if m is None:
            if missing_ok:
                return
            raise PolicyError("customer_address", customer_address, f"no mapping in RDID {rdid}")
        members = self._by_vsid.get(m.vsid, {})
        members.pop((m.customer_address, m.customer_mac), None)
        if not members:
            self._by_vsid.pop(m.vsid, None)
        if self._by_mac.get((m.vsid, m.customer_mac)) == m:
            del self._by_mac[(m.vsid, m.customer_mac)]
            for other in self._by_vsid.get(m.vsid, {}).values():
                if other.customer_mac == m.customer_mac:  # another IP of the same NIC
                    self._by_mac[(m.vsid, m.customer_mac)] = other
                    break

    def by_ip(self, rdid: str, address: IPAddress) -> Mapping | None:
        """The mapping of CA ``address`` in routing domain ``rdid``."""
        return self._by_ip.get((rdid, address))

    def by_mac(self, vsid: int, mac: str) -> Mapping | None:
        """The mapping of CA MAC ``mac`` in virtual subnet ``vsid``."""
        return self._by_mac.get((vsid, mac))

    def in_vsid(self, vsid: int) -> list[Mapping]:
        """Every mapping of virtual subnet ``vsid`` (for broadcast replication)."""
        return sorted(self._by_vsid.get(vsid, {}).values(), key=lambda m: m.customer_address)

    def all(self) -> list[Mapping]:
        """Every mapping, by RDID then CA."""
        return sorted(self._by_ip.values(), key=lambda m: (m.rdid, m.customer_address))

    def rdid_of_vsid(self, vsid: int) -> str | None:
        """The routing domain of ``vsid`` as its mappings tell."""
        for m in self._by_vsid.get(vsid, {}).values():
            return m.rdid
        return None


@functools.lru_cache(maxsize=SUBNET_CACHE)
def _same_subnet(address: str, other: str, prefix_length: int) -> bool:
    """Whether IPv4 ``other`` is in ``address``/``prefix_length``: asked for each new
    flow toward a remote PA, of a few PAs, so the answers are kept."""
    net = ipaddress.ip_network(f"{address}/{prefix_length}", strict=False)
    return ipaddress.ip_address(other) in net
