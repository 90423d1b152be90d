"""The I/O edge of a host switch: what a driver does and what it calls back.

A ``Driver`` moves frames between the VM ports, the uplinks and a ``FrameSink`` (the
``HostSwitch``). It owns the PA side of the wire: it answers ARP and ICMP echo for the
PAs, resolves next hops (an on-link PA, or the gateway) and reports them with
``sink.pa_neighbor``, pushes and pops the PA subnet's VLAN tag, and hands only tunnel
frames addressed to a local PA to ``sink.from_uplink``.

Beyond docs/vswitch.md a driver has two small duties the switch needs to program the
engine's PA side:

- ``uplink_mac(interface)``: the MAC of an uplink, the outer source MAC of frames sent
  from the PA it carries (``VSwitchError`` when there is no such uplink);
- ``watch_neighbors(addresses)``: the remote PAs this host sends to (the whole set each
  time); the driver keeps the on-link ones resolved and reports them (and the gateways
  of its PAs) with ``sink.pa_neighbor``; off-link ones need nothing but the gateway;
- ``set_access_vlans(vlans)``: the VLANs of the access ports (NICs on a traditional VLAN
  network, the whole set each time): frames received tagged with one of them that is no
  PA's VLAN go to ``sink.from_uplink`` as they are, tag included.

A driver calls ``sink.round_done()`` once the frames it handed over in one go (a
polling round) were dealt with and what the switch sent back was sent: work the switch
defers off a frame's path (writing kernel fast-path entries) runs then, so the frame
that decided a flow leaves first.

Frames in ``transmit`` are whole outer Ethernet frames as the engine built them: outer
MACs from the PA's ``uplink_mac`` and the reported next hop, 802.1Q tag of the source PA's
subnet included; the driver sends them out of the uplink carrying ``source_pa`` as they
are (an access port's frame, to ``BRIDGED``, already carries its VLAN's tag). Tunnel
frames given to ``from_uplink`` may keep their tag or not (the engine takes both).

A driver that can meter the abuse limits below the switch (``MeteringDriver``: the Linux
driver's port socket filters) gets them from the switch with ``set_port_limits`` and
reports what it dropped; the engine's meter stays behind it (docs/vfp.md).

A driver whose sockets count what they receive (``RingCounting``: the Linux driver's
packet rings) reports those counters per VM port and per uplink (``hnv vfp counters``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from openhnv.vfp.emits import Transmit
from openhnv.vfp.limits import PortLimits
from openhnv.vfp.qos import QosSettings
from openhnv.vswitch.errors import VSwitchError
from openhnv.vswitch.team import Placement

MAX_VLAN_ID = 4094


@dataclass(frozen=True, slots=True)
class PaConfig:
    """One provider address of this host (one per team member / uplink)."""

    address: str  # "192.168.1.10"
    prefix_length: int  # 24
    vlan_id: int | None  # 802.1Q tag of the PA subnet, None = untagged
    gateway: str | None  # the PA subnet's router, for off-link PAs
    interface: str  # the uplink (physical NIC) that carries it, e.g. "up0"

    def __post_init__(self) -> None:
        try:
            net = ipaddress.IPv4Interface(f"{self.address}/{self.prefix_length}")
        except (ValueError, TypeError) as exc:
            raise VSwitchError(
                f"provider address {self.address!r}/{self.prefix_length!r}: not an IPv4"
                f" address with a prefix length 0..32 ({exc})"
            ) from None
        object.__setattr__(self, "address", str(net.ip))
        if self.vlan_id is not None and (
            not isinstance(self.vlan_id, int) or not 1 <= self.vlan_id <= MAX_VLAN_ID
        ):
            raise VSwitchError(f"provider address {self.address}: vlan_id {self.vlan_id!r}"
                               f" is not 1..{MAX_VLAN_ID} (None: untagged)")  # fmt: skip
        if self.gateway is not None:
            try:
                gateway = ipaddress.IPv4Address(self.gateway)
            except ValueError:
                raise VSwitchError(
                    f"provider address {self.address}: gateway {self.gateway!r} is not IPv4"
                ) from None
            if gateway not in net.network or gateway == net.ip:
                raise VSwitchError(f"provider address {self.address}: gateway {gateway} is"
                                   f" not another address of {net.network}")  # fmt: skip
            object.__setattr__(self, "gateway", str(gateway))
        if not isinstance(self.interface, str) or not self.interface.strip():
            raise VSwitchError(
                f"provider address {self.address}: interface {self.interface!r} is empty"
            )

    @property
    def network(self) -> ipaddress.IPv4Network:
        """The PA subnet."""
        return ipaddress.IPv4Interface(f"{self.address}/{self.prefix_length}").network

    def on_link(self, other: str) -> bool:
        """Whether PA ``other`` is in this PA's subnet (reached without the gateway)."""
        return ipaddress.IPv4Address(other) in self.network


class FrameSink(Protocol):
    """What a driver calls: the ``HostSwitch``."""

    def from_port(self, port: str, frames: list[bytes]) -> float:
        """Frames VM ``port`` sent; returns the seconds the driver may leave the port's
        queue unread (0.0: read on; more when the port is over its abuse limits)."""
        ...

    def from_uplink(self, frames: list[bytes]) -> None: ...
    def round_done(self) -> None: ...  # after the round's frames and their sends
    def port_added(self, port: str, mac: str) -> None: ...
    def port_removed(self, port: str) -> None: ...
    def pa_neighbor(self, address: str, mac: str | None) -> None: ...

    def team_changed(self, placement: Mapping[str, Placement], carrier: Mapping[str, bool]) -> None:
        """Where each PA lives now (team failover, ``vswitch.team``) and the carrier of
        each team member the driver has heard of."""
        ...


class Driver(Protocol):
    """Moves frames for one host (see the module docstring)."""

    def open(self, sink: FrameSink) -> None: ...
    def close(self) -> None: ...
    def send_to_port(self, port: str, frames: Sequence[bytes]) -> None: ...
    def transmit(self, frames: Sequence[Transmit]) -> None: ...
    def set_provider_addresses(self, pas: Sequence[PaConfig]) -> None: ...
    def uplink_mac(self, interface: str) -> str: ...
    def watch_neighbors(self, addresses: Sequence[str]) -> None: ...
    def set_access_vlans(self, vlans: frozenset[int]) -> None: ...


@runtime_checkable
class MeteringDriver(Protocol):
    """A driver that meters the abuse limits of its VM ports before the switch reads
    their frames (``vfp.limits``; ``LinuxDriver``: in its port socket filters)."""

    def set_port_limits(self, limits: PortLimits) -> None: ...

    def kernel_limit_drops(self) -> dict[str, dict[str, int]]:
        """Port -> ``vfp.limits`` reason -> frames dropped below the switch (0s left out)."""
        ...

    def metering_status(self) -> dict[str, object]:
        """``state`` on/off, and ``reason`` when off."""
        ...


@runtime_checkable
class QosShaping(Protocol):
    """A driver whose kernel shapes capped ports (``LinuxDriver``, vswitch.qdisc): it
    shapes inbound caps for every frame that enters a VM, so the engine's QoS layer
    polices outbound only; it schedules its uplinks (vswitch.htb), so what a VM port
    sends goes out with ``transmit_from``, in the port's class."""

    def set_port_qos(self, port: str, settings: QosSettings) -> None: ...
    def qos_drops(self) -> dict[str, dict[str, int]]: ...
    def qos_status(self) -> dict[str, object]: ...
    def transmit_from(self, port: str, frames: Sequence[Transmit]) -> None: ...


@dataclass(frozen=True, slots=True)
class RingCounters:
    """What each socket of a driver counted (``vswitch.ring.RECEIVE_COUNTERS``: frames
    received, GSO frames segmented and dropped, drops by reason), by VM port and by
    uplink name."""

    ports: Mapping[str, Mapping[str, int]]
    uplinks: Mapping[str, Mapping[str, int]]


@runtime_checkable
class RingCounting(Protocol):
    """A driver that reports its sockets' receive counters (``LinuxDriver``)."""

    def ring_counters(self) -> RingCounters: ...
