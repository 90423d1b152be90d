"""The engine's state: spaces, ports, the uplink, and the shared compiled templates.

``EngineState`` is what the slow path reads (``pipeline.decide``), what programming
changes (``programming.Programming``) and what listings show (``listing.Listing``); the
engine (``engine.VfpEngine``) owns one and hands it to those parts. Templates are shared
by every flow with the same outcome (``discard``, ``local_delivery``, ``encap``,
``decap``) and so are the rule tuples of flows decided by the same rules (``rule_set``).
"""

from __future__ import annotations

from openhnv.packet.addresses import ZERO_MAC, mac_to_str
from openhnv.vfp.emits import UPLINK
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.limits import NO_LIMITS, PortLimits, PortMeter
from openhnv.vfp.model import Port
from openhnv.vfp.policy import MIN_VSID, Rule
from openhnv.vfp.routes import RouteSpace
from openhnv.vfp.spaces import MappingSpace, ProviderAddress
from openhnv.vfp.transposition import Bridge, Decap, Discard, Encap, InnerEdit, LocalDelivery

MAX_RULE_SETS = 100_000
_NO_RDID = "-"


class EngineState:
    """The switch-wide state: spaces, PAs, ports (by name and MAC), the uplink, templates."""

    def __init__(self, flow_capacity: int, limits: PortLimits = NO_LIMITS) -> None:
        self.flow_capacity = flow_capacity
        self.limits = limits
        self.police_inbound = True
        """Whether the QoS layer polices inbound caps (False: the driver's kernel shapes
        them for every frame that enters a VM, vswitch.qdisc)."""
        """The abuse limits each VM port gets (``Port.meter``; vfp.limits)."""
        self.uplink = Port(
            UPLINK, mac_to_str(ZERO_MAC), MIN_VSID, _NO_RDID, (), True, flow_capacity
        )
        """The port of frames from the PA network (its inbound table keys outer + inner)."""
        self.mappings = MappingSpace()
        self.routes = RouteSpace()
        """Per routing domain: the address space and the routes toward gateways."""
        self.provider_addresses: dict[str, ProviderAddress] = {}
        self.pa_neighbors: dict[str, str] = {}
        self.ports: dict[str, Port] = {}
        self.ports_by_mac: dict[str, Port] = {}
        self.access_ports: dict[int, dict[str, Port]] = {}
        """Access ports by VLAN, then by MAC (kept by programming)."""
        self._discards: dict[str, Discard] = {}
        self._locals: dict[tuple[object, ...], LocalDelivery] = {}
        self._encaps: dict[tuple[object, ...], Encap] = {}
        self._decaps: dict[tuple[str, int, int], Decap] = {}
        self._sources: dict[str, tuple[list[ProviderAddress], bool]] = {}
        self._bridges: dict[int, Bridge] = {}
        self._rule_sets: dict[tuple[int, ...], tuple[Rule, ...]] = {}

    def meter(self) -> PortMeter | None:
        """A new port's meter under ``limits`` (None when every limit is off)."""
        return None if self.limits == NO_LIMITS else PortMeter(self.limits, 0.0)

    def port(self, name: str) -> Port:
        """The VM port ``name`` (``PolicyError`` when there is none)."""
        port = self.ports.get(name)
        if port is None:
            raise PolicyError("port", name, "no such port")
        return port

    def port_or_uplink(self, name: str) -> Port:
        """``port(name)``, or the uplink for ``UPLINK``."""
        return self.uplink if name == UPLINK else self.port(name)

    def rule_set(self, rules: list[Rule]) -> tuple[Rule, ...]:
        """``rules`` as a tuple shared by every flow decided by the same rules."""
        key = tuple(map(id, rules))
        found = self._rule_sets.get(key)
        if found is None:
            if len(self._rule_sets) > MAX_RULE_SETS:
                self._rule_sets.clear()
            found = self._rule_sets[key] = tuple(rules)
        return found

    def forget_templates(self) -> None:
        """Drop shared templates after a change of PAs or neighbours (flows re-evaluate)."""
        self._locals.clear()
        self._encaps.clear()
        self._sources.clear()
        self._bridges.clear()

    def bridge(self, vlan: int) -> Bridge | None:
        """Out of the uplink tagged with ``vlan``, on the uplink of the first PA (by
        address); None without a PA (no uplink is known)."""
        t = self._bridges.get(vlan)
        if t is None and self.provider_addresses:
            first = min(self.provider_addresses)
            t = self._bridges[vlan] = Bridge(vlan, first)
        return t

    def access_vlans(self) -> frozenset[int]:
        """The VLANs with an access port."""
        return frozenset(self.access_ports)

    def sources_toward(self, provider_address: str) -> tuple[list[ProviderAddress], bool]:
        """The local PAs to send toward ``provider_address`` from, and whether on-link."""
        found = self._sources.get(provider_address)
        if found is None:
            pas = sorted(self.provider_addresses.values(), key=lambda p: p.address)
            on_link = [p for p in pas if p.on_link(provider_address)]
            found = self._sources[provider_address] = (on_link or pas, bool(on_link))
        return found

    def discard(self, reason: str) -> Discard:
        t = self._discards.get(reason)
        if t is None:
            t = self._discards[reason] = Discard(reason)
        return t

    def decap(self, port: str, offset: int, outer_len: int) -> Decap:
        t = self._decaps.get((port, offset, outer_len))
        if t is None:
            t = self._decaps[(port, offset, outer_len)] = Decap(port, offset, outer_len)
        return t

    def local_delivery(self, port: str, edit: InnerEdit | None) -> LocalDelivery:
        key = (port, _edit_key(edit))
        t = self._locals.get(key)
        if t is None:
            t = self._locals[key] = LocalDelivery(port, edit)
        return t

    def encap(self, nvgre: bool, src: ProviderAddress, dst_pa: str, next_hop: str, vsid: int,
              edit: InnerEdit | None) -> Encap:  # fmt: skip
        key = (nvgre, src.address, dst_pa, next_hop, vsid, _edit_key(edit))
        t = self._encaps.get(key)
        if t is None:
            t = self._encaps[key] = Encap(
                nvgre=nvgre, outer_src_mac=src.mac, outer_dst_mac=next_hop,
                vlan_id=src.vlan_id, source_pa=src.address, provider_address=dst_pa,
                vsid=vsid, edit=edit, mtu=src.mtu,
            )  # fmt: skip
        return t


def _edit_key(edit: InnerEdit | None) -> tuple[object, ...] | None:
    if edit is None:
        return None
    return (edit.macs, edit.decrement_ttl, edit.family, edit.l3)
