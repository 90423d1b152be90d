"""The uplink's packet path: frames from the PA network, into VM ports.

A frame from the uplink whose exact key (outer and inner) is in the uplink's unified
flow table takes the fast path: its cached decapsulation, then the destination port's
inbound flow, inline when that flow is current and plain. Anything else is decided by
``uplink.decide_uplink`` (``_slow_uplink``) and committed (``vfp.lifecycle``). A tagged
frame of a VLAN with access ports on this host is bridged to them untagged
(``_from_vlan``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from openhnv.packet.addresses import MAC_GROUP_BIT, MAC_LEN, mac_to_str
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import (
    ETHERNET_HEADER_LEN,
    ETHERTYPE_AT,
    ETHERTYPE_VLAN_BYTES,
    VLAN_TCI_AT,
    pop_vlan,
)
from openhnv.packet.flowkey import (
    FAST_KEY,
    NVGRE_OUTER_KEY,
    VXLAN_OUTER_KEY,
    flow_key,
    outer_key,
)
from openhnv.packet.frames import NVGRE_OUTER_LEN, VXLAN_OUTER_LEN
from openhnv.packet.ipv4 import IPV4_PROTOCOL_AT, PROTO_UDP
from openhnv.vfp.emits import UPLINK, Deliver, Emit
from openhnv.vfp.flowtable import TCP_WATCH_FLAGS, Flow
from openhnv.vfp.lifecycle import commit
from openhnv.vfp.transposition import Decap, Discard, LocalDelivery
from openhnv.vfp.uplink import decide_uplink
from openhnv.vfp.vmpath import VmPath

_OUTER_PROTOCOL_AT = ETHERNET_HEADER_LEN + IPV4_PROTOCOL_AT  # of an untagged outer frame
_join = b"".join
_fast_key = FAST_KEY.unpack_from
_vxlan_key = VXLAN_OUTER_KEY.unpack_from
_nvgre_key = NVGRE_OUTER_KEY.unpack_from
_new = tuple.__new__


class UplinkPath(VmPath):
    """The packet path of the uplink, on top of the VM ports' it delivers into."""

    def _from_uplink(self, frames: Iterable[bytes], now: float, out: list[Emit]) -> None:
        up = self.state.uplink
        get = up.inbound.flows.get
        ports = self.state.ports
        n = hits = 0
        append = out.append
        join, fast_key, vxlan_key, nvgre_key = _join, _fast_key, _vxlan_key, _nvgre_key
        protocol_at, udp = _OUTER_PROTOCOL_AT, PROTO_UDP  # locals: the loop's names
        vxlan_inner, nvgre_inner = VXLAN_OUTER_LEN, NVGRE_OUTER_LEN
        for frame in frames:
            n += 1
            try:  # plain VXLAN / NVGRE around plain IPv4 TCP/UDP; anything else misses
                if frame[protocol_at] == udp:
                    key = join(vxlan_key(frame) + fast_key(frame, vxlan_inner))
                    inner = vxlan_inner
                else:
                    key = join(nvgre_key(frame) + fast_key(frame, nvgre_inner))
                    inner = nvgre_inner
            except (IndexError, struct.error):
                key, inner = b"", 0
            f = get(key)
            if f is None or f.generation != up.generation:
                okey, inner = outer_key(frame)
                ikey = None
                if inner >= 0:
                    try:
                        ikey = flow_key(frame, inner)
                    except PacketError:  # or an access port's UDP, shaped like VXLAN
                        self._vlan_or_malformed(frame, now, out)
                        continue
                key = b"" if ikey is None else okey + ikey
                f = get(key) if key else None
                if f is None or f.generation != up.generation:
                    self._slow_uplink(frame, key, now, out, f, okey, ikey)
                    continue
            hits += 1
            f.last_seen = now
            t = f.template
            if t.__class__ is not Decap:
                self._after(up, t.emit(UPLINK, frame, 0), now, out)
                continue
            d = t
            q = ports[d.port]
            ikey = key[d.outer_len :]
            qf = q.inbound.flows.get(ikey)
            inner_frame = frame[inner:]
            if (
                qf is None
                or qf.generation != q.generation
                or q.qos_in is not None  # capped: _to_vm meters it
                or not q.enabled
                or qf.template.__class__ is Discard  # drops (maybe of replies now): _to_vm
                or (  # SYN, FIN or RST: _to_vm watches the connection's flags
                    qf.flags_at
                    and len(inner_frame) > qf.flags_at
                    and inner_frame[qf.flags_at] & TCP_WATCH_FLAGS
                )
            ):
                self._to_vm(q, inner_frame, now, out, ikey)
                continue
            q.packets_in += 1
            q.uft_hits += 1
            qf.last_seen = now
            qt = qf.template
            if qt.plain and qt.__class__ is LocalDelivery:
                append(_new(Deliver, (q.name, inner_frame)))
            else:
                em = qt.emit(q.name, inner_frame, 0)
                if em.__class__ is Deliver:
                    append(em)
                else:
                    self._after(q, em, now, out)
        up.packets_in += n
        up.uft_hits += hits

    def _vlan_or_malformed(self, frame: bytes, now: float, out: list[Emit]) -> None:
        if not self._from_vlan(frame, now, out):
            self._drop(self.state.uplink, "malformed", out)

    def _from_vlan(self, frame: bytes, now: float, out: list[Emit]) -> bool:
        """A tagged frame from the uplink: when its VLAN has access ports, untagged to the
        one of its destination MAC (or to each, broadcast and multicast), through their
        inbound layers; True when the frame was the VLAN's (taken or dropped here)."""
        access = self.state.access_ports
        if not access or frame[ETHERTYPE_AT:VLAN_TCI_AT] != ETHERTYPE_VLAN_BYTES:
            return False
        try:
            vlan, untagged = pop_vlan(frame)
        except PacketError:
            return False
        members = access.get(vlan or 0)
        if members is None:
            return False
        up = self.state.uplink
        destination = mac_to_str(untagged[:MAC_LEN])
        if mac_to_str(untagged[MAC_LEN : 2 * MAC_LEN]) in members:
            self._drop(up, "vlan_own_frame", out)  # ours, back through another uplink
        elif untagged[0] & MAC_GROUP_BIT:
            for q in list(members.values()):
                self._to_vm(q, untagged, now, out)
        elif destination in members:
            self._to_vm(members[destination], untagged, now, out)
        else:
            self._drop(up, "vlan_no_port", out)
        return True

    def _slow_uplink(
        self,
        frame: bytes,
        key: bytes,
        now: float,
        out: list[Emit],
        stale: Flow | None,
        okey: bytes,
        ikey: bytes | None,
    ) -> None:
        """Decide a frame from the PA network; ``okey``/``ikey``: the outer and inner parts
        of its key (``ikey`` None when the frame has no plain shape: ``key`` is empty)."""
        if self._from_vlan(frame, now, out):
            return
        up = self.state.uplink
        d, inner = decide_uplink(self.state, frame, outer_key=okey, inner_key=ikey)
        self._count(up, d)
        template = d.template
        if template is None:
            raise RuntimeError("the uplink decision produced no template")
        cacheable = bool(key) and inner is not None
        if cacheable:
            state, offload = self.state, self.offload
            if commit(state, offload, up, up.inbound, key, d, template, now, 0, b"", stale) is None:
                self._drop(up, "flow_table_full", out)
                return
        if isinstance(template, Decap) and inner is not None:  # inner: the decapsulated frame's
            q = self.state.ports[template.port]
            self._to_vm(q, frame[template.offset :], now, out, fk=inner)
        else:
            self._after(up, template.emit(UPLINK, frame, 0), now, out)
