"""The PA side of one host's engine: this host's PAs and next hops as engine commands.

``HostSwitch`` owns one ``ProviderAddresses`` and calls it under its lock; nothing here
does I/O. It holds what the engine's PA side is made of:

- the PAs (``PaConfig``), each with its uplink's MAC and MTU: ``replace`` turns a new
  set into ``RemoveProviderAddress`` / ``AddProviderAddress``;
- the next hops the driver resolved (remote PAs and gateways): ``neighbor`` turns one
  into ``SetPaNeighbor`` for the remote PAs on-link with a local one, and into the
  ``gateway_mac`` of the PAs behind that gateway;
- the mappings per PA (``count``), so that ``watch_change`` names the remote PAs the
  driver must keep resolved when they change, at the cost of a batch's own mappings;
- team failover (``vswitch.team``): where each PA lives now (``move``) and the PAs with
  the member that carries each (``placed``, what the kernel fast path sends from);
- the uplinks' MTUs: a warning for one too low to carry a VM's frames encapsulated
  (``check_uplink_mtu``), and the MTU a VM's NIC should have (``overlay_mtu``).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import logging
from collections import Counter
from collections.abc import Iterable, Sequence

from openhnv.packet.ethernet import VLAN_TAG_LEN
from openhnv.packet.frames import VXLAN_OUTER_LEN
from openhnv.vfp import commands as c
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.policy import parse_address
from openhnv.vfp.spaces import IPAddress, Mapping, ProviderAddress
from openhnv.vswitch.driver import PaConfig
from openhnv.vswitch.team import Placement, member_order

log = logging.getLogger(__name__)

VM_MTU = 1500
"""The MTU a VM's NIC has unless told otherwise: an uplink needs this plus the
encapsulation's overhead (``VXLAN_OUTER_LEN``, the larger) to carry its frames whole."""


class ProviderAddresses:
    """This host's PAs, next hops and team placement (see the module docstring)."""

    def __init__(self, mappings: Iterable[Mapping]) -> None:
        """``mappings``: those the engine holds already (its PA uses)."""
        self.pas: dict[str, PaConfig] = {}
        self.macs: dict[str, str] = {}
        self.mtus: dict[str, int | None] = {}
        self.placed: dict[str, PaConfig] = {}  # the PAs on the member carrying each now
        self.placement: dict[str, Placement] = {}
        self.carrier: dict[str, bool] = {}
        self.next_hops: dict[str, str] = {}  # resolved address -> MAC (PAs and gateways)
        self.watched: frozenset[str] = frozenset()
        self._warned_mtu: set[str] = set()
        self._uses: Counter[str] = Counter(m.provider_address for m in mappings)

    def replace(
        self,
        wanted: dict[str, PaConfig],
        macs: dict[str, str],
        neighbors: collections.abc.Mapping[str, str],
    ) -> list[c.Command]:
        """The PAs become ``wanted`` (address -> PA) with ``macs``; the commands that make
        the engine (whose PA neighbours are ``neighbors``) follow."""
        cmds: list[c.Command] = [
            c.RemoveProviderAddress(a, missing_ok=True) for a in self.pas if a not in wanted
        ]
        self.pas, self.macs = wanted, macs
        self.placed = self._on_members()
        cmds += [c.AddProviderAddress(self.engine_pa(pa)) for pa in wanted.values()]
        return cmds + self.neighbor_changes(neighbors)

    def neighbor(
        self, address: str, mac: str | None, neighbors: collections.abc.Mapping[str, str]
    ) -> list[c.Command] | None:
        """Next hop ``address`` resolved (``mac``) or lost (None): the commands it makes
        (the PAs behind it as their gateway, the engine's neighbours); None: no change."""
        if self.next_hops.get(address) == mac:
            return None
        if mac is None:
            del self.next_hops[address]
        else:
            self.next_hops[address] = mac
        cmds: list[c.Command] = [
            c.AddProviderAddress(self.engine_pa(pa))
            for pa in self.pas.values()
            if pa.gateway == address
        ]
        return cmds + self.neighbor_changes(neighbors)

    def neighbor_changes(self, have: collections.abc.Mapping[str, str]) -> list[c.Command]:
        """``SetPaNeighbor`` for the resolved remote PAs on-link with a local PA (the
        engine's neighbours, ``have`` now), and to forget those no longer resolved or
        on-link."""
        pas = self.pas.values()
        wanted = {
            address: mac
            for address, mac in self.next_hops.items()
            if address not in self.pas and any(pa.on_link(address) for pa in pas)
        }
        cmds: list[c.Command] = [c.SetPaNeighbor(a, None) for a in have if a not in wanted]
        cmds += [c.SetPaNeighbor(a, m) for a, m in wanted.items() if have.get(a) != m]
        return cmds

    def engine_pa(self, pa: PaConfig) -> ProviderAddress:
        gateway_mac = None if pa.gateway is None else self.next_hops.get(pa.gateway)
        return ProviderAddress(pa.address, self.macs[pa.address], pa.prefix_length,
                               pa.vlan_id, gateway_mac, self.mtus.get(pa.address))  # fmt: skip

    def count(self, before: Sequence[Mapping | None], after: Sequence[Mapping | None]) -> None:
        """A batch replaced the mappings ``before`` by ``after`` (pairwise; None: none)."""
        for old, new in zip(before, after, strict=True):
            self._count(old, -1)
            self._count(new, 1)

    def _count(self, mapping: Mapping | None, step: int) -> None:
        if mapping is None:
            return
        self._uses[mapping.provider_address] += step
        if self._uses[mapping.provider_address] <= 0:
            del self._uses[mapping.provider_address]

    def watch_change(self) -> list[str] | None:
        """The remote PAs the mappings name, when they changed since the driver was told
        (from the count of mappings per PA: a batch costs its mappings, not all of them)."""
        remote = frozenset(pa for pa in self._uses if pa not in self.pas)
        if remote == self.watched:
            return None
        self.watched = remote
        return sorted(remote)

    def move(
        self,
        placement: collections.abc.Mapping[str, Placement],
        carrier: collections.abc.Mapping[str, bool],
    ) -> tuple[bool, set[str]]:
        """Where each PA lives now and each member's carrier: whether that changed, and
        the PAs now carried by another member than before."""
        changed = (self.placement, self.carrier) != (placement, carrier)
        self.placement, self.carrier = dict(placement), dict(carrier)
        before, self.placed = self.placed, self._on_members()
        moved = {a for a, pa in self.placed.items()
                 if a in before and before[a].interface != pa.interface}  # fmt: skip
        return changed, moved

    def team_status(self) -> dict[str, object]:
        """Each team member's carrier and where each PA lives."""
        members = {pa.interface for pa in self.pas.values()} | set(self.carrier)
        return {
            "members": {m: "up" if self.carrier.get(m, True) else "down"
                        for m in sorted(members, key=member_order)},
            "provider_addresses": {
                a: {"member": p.member, "home": p.home, "moved": p.moved}
                for a, p in sorted(self.placements().items())
            },
        }  # fmt: skip

    def placements(self) -> dict[str, Placement]:
        """Where each PA lives (at home unless the driver moved it)."""
        home = {a: Placement(a, pa.interface, pa.interface) for a, pa in self.pas.items()}
        return {a: self.placement.get(a, p) for a, p in home.items()}

    def check_uplink_mtu(self, interface: str, mtu: int) -> None:
        """A warning (once per uplink) when ``mtu`` cannot carry a VM's 1500-byte
        packets encapsulated."""
        needed = VM_MTU + VXLAN_OUTER_LEN
        if mtu < needed and interface not in self._warned_mtu:
            self._warned_mtu.add(interface)
            log.warning(
                "uplink %s has MTU %d, below %d (%d + %d of VXLAN encapsulation): VM frames"
                " of %d bytes are answered with ICMP fragmentation needed (MTU %d)",
                interface, mtu, needed, VM_MTU, VXLAN_OUTER_LEN, VM_MTU, mtu - VXLAN_OUTER_LEN,
            )  # fmt: skip

    def overlay_mtu(self) -> int:
        """``VM_MTU``, or less when an uplink cannot carry that much once encapsulated
        (and tagged)."""
        limits = [
            mtu - VXLAN_OUTER_LEN - (VLAN_TAG_LEN if self.pas[a].vlan_id else 0)
            for a, mtu in self.mtus.items()
            if mtu is not None and a in self.pas
        ]
        return min([VM_MTU, *limits])

    def _on_members(self) -> dict[str, PaConfig]:
        """The PAs with the member that carries each now as their interface."""
        placed: dict[str, PaConfig] = {}
        for address, pa in self.pas.items():
            where = self.placement.get(address)
            if where is None or where.member == pa.interface:
                placed[address] = pa
            else:
                placed[address] = dataclasses.replace(pa, interface=where.member)
        return placed


def mapping_keys(batch: Sequence[c.Command]) -> list[tuple[str, IPAddress]]:
    """The (RDID, CA) of every mapping the batch adds or removes, each once."""
    keys: dict[tuple[str, IPAddress], None] = {}
    for command in batch:
        if isinstance(command, c.AddMapping):
            rdid, address = command.mapping.rdid, command.mapping.customer_address
        elif isinstance(command, c.RemoveMapping):
            rdid, address = command.rdid, command.customer_address
        else:
            continue
        try:
            keys[(rdid, parse_address(address, "customer_address"))] = None
        except PolicyError:
            continue  # the engine refuses it too: that mapping does not change
    return list(keys)
