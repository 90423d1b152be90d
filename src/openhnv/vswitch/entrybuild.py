"""Kernel entries from the engine's offload entries: key and value bytes of one head.

``EntryBuilder.build(entry)`` turns an ``engine.offload`` ``OffloadEntry`` into what
the fast path's maps hold (``Built``): the packed kernel key, made straight from the
head flow's key (``fastpath.keys``), and the packed ``hnv_flow`` with generations
zero (``KernelOffload`` sets them when it writes): the destination's outer-header
template with the flow's entropy and the uplink's ifindex and MTU (encapsulation),
or the target port's ifindex (delivery, decapsulation), each with the composed inner
edit. None: the kernel cannot run it (a port or uplink without an interface, a PA
unknown here, a key of a shape the kernel never executes).

A new flow's entries are built while the frame that paired it waits (or just before:
``KernelOffload.prepare``), so building is cheap: the deliver and decap entries,
the same for every flow to one port with one edit, are packed once, and so is each
encapsulation entry per outer template, uplink and edit (a flow's own entropy set in
a copy); ``forget`` when the places (ports, PAs, MTUs) may have changed.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from openhnv.packet.addresses import MAC_LEN
from openhnv.vfp.emits import UPLINK
from openhnv.vfp.offload import DECAP, DELIVER, ENCAP, Action, FlowEdit, OffloadEntry
from openhnv.vswitch.driver import PaConfig
from openhnv.vswitch.fastpath import entries, keys
from openhnv.vswitch.fastpath.layout import FlowEntry, c_layout

Table = Literal["port", "uplink"]
_ENTROPY = struct.Struct("=H")
_ENTROPY_AT = next(f.offset for f in c_layout(FlowEntry) if f.name == "entropy")
PACKED_MAX = 1024
"""Packed deliver/decap entries kept (per target port and edit)."""


class KernelPlaces(Protocol):
    """Where things are in the kernel: the driver (``LinuxDriver``)."""

    def port_ifindex(self, port: str) -> int | None: ...
    def uplink_ifindex(self, interface: str) -> int | None: ...
    def uplink_mtu(self, interface: str) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Built:
    """One head's kernel entry: its table, packed key, packed entry (generations zero),
    the generation slots it names and the head's port."""

    table: Table
    key: bytes
    entry: bytes
    slots: tuple[int, ...]
    port: str


class EntryBuilder:
    """Builds kernel entries (module docstring); ``slot_of`` gives a port's generation
    slot (None: it has none)."""

    def __init__(
        self,
        places: KernelPlaces,
        pas: Callable[[], Mapping[str, PaConfig]],
        slot_of: Callable[[str], int | None],
    ) -> None:
        self.places = places
        self.pas = pas
        self.slot_of = slot_of
        self._packed: dict[tuple[Action, int, FlowEdit | None], bytes] = {}
        self._encaps: dict[tuple[bytes, int, str, FlowEdit | None], tuple[bytes, int]] = {}

    def forget(self) -> None:
        """Ports, PAs or MTUs may have changed: pack the entries again."""
        self._packed.clear()
        self._encaps.clear()

    def build(self, e: OffloadEntry) -> Built | None:
        """The kernel key and entry of ``e``, or None when the kernel cannot run it
        (``FastPathError``: a value the kernel's layout cannot hold)."""
        slots = tuple(self.slot_of(p) for p in e.ports)
        if any(s is None for s in slots):
            return None
        known = tuple(s for s in slots if s is not None)
        if e.action == DECAP:
            return self._build_decap(e, known)
        ifindex = self.places.port_ifindex(e.port)
        key = None if ifindex is None else keys.port_key(ifindex, e.key)
        if key is None:
            return None
        if e.action == ENCAP and e.encap is not None:
            pa = self.pas().get(e.encap.source_pa)
            uplink = None if pa is None else self.places.uplink_ifindex(pa.interface)
            if pa is None or uplink is None:
                return None
            entry = self._encap_entry(e.encap.template.header, e.entropy, uplink,
                                      pa.interface, e.edit)  # fmt: skip
            return Built("port", key, entry, known, e.port)
        if e.action == DELIVER and e.target is not None:
            target = self.places.port_ifindex(e.target)
            if target is None:
                return None
            return Built("port", key, self._plain_entry(DELIVER, target, e.edit), known, e.port)
        return None

    def _build_decap(self, e: OffloadEntry, slots: tuple[int, ...]) -> Built | None:
        if e.target is None:
            return None
        target = self.places.port_ifindex(e.target)
        local = keys.local_pa(e.key)
        if target is None or local is None:
            return None
        pa = self.pas().get(socket.inet_ntoa(local))
        vlan = 0 if pa is None or pa.vlan_id is None else pa.vlan_id
        key = keys.uplink_key(e.key, vlan, tag_wins=False)
        if key is None:
            return None
        return Built("uplink", key, self._plain_entry(DECAP, target, e.edit), slots, UPLINK)

    def _encap_entry(
        self, header: bytes, entropy: int, uplink: int, interface: str, edit: FlowEdit | None
    ) -> bytes:
        """The packed encapsulation entry (generations zero): packed once per outer
        template, uplink and edit (the uplink's MTU as of then), the flow's entropy set
        in a copy. A cached entry serves an entropy up to the largest one it was packed
        with (the range check stays ``entries.encap_flow``'s)."""
        place = (header, uplink, interface, edit)
        cached = self._encaps.get(place)
        if cached is not None and entropy <= cached[1]:
            out = bytearray(cached[0])
            _ENTROPY.pack_into(out, _ENTROPY_AT, entropy)
            return bytes(out)
        mtu = self.places.uplink_mtu(interface) or 0
        packed = entries.encap_flow(header, entropy=entropy, uplink_ifindex=uplink, mtu=mtu,
                                    edit=_entry_edit(edit)).pack()  # fmt: skip
        if len(self._encaps) >= PACKED_MAX:
            self._encaps.clear()
        self._encaps[place] = (packed, max(entropy, 0 if cached is None else cached[1]))
        return packed

    def _plain_entry(self, action: Action, target: int, edit: FlowEdit | None) -> bytes:
        """The packed deliver or decap entry to ``target`` (generations zero)."""
        cached = self._packed.get((action, target, edit))
        if cached is None:
            make = entries.deliver_flow if action == DELIVER else entries.decap_deliver_flow
            cached = make(target, edit=_entry_edit(edit)).pack()
            if len(self._packed) >= PACKED_MAX:
                self._packed.clear()
            self._packed[(action, target, edit)] = cached
        return cached


def _entry_edit(edit: FlowEdit | None) -> entries.EntryEdit | None:
    if edit is None:
        return None
    return entries.EntryEdit(edit.macs[:MAC_LEN], edit.macs[MAC_LEN:], edit.decrement_ttl)
