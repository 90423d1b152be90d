"""Fast-path entries from the slow path's decisions, and the kernel's keys of frames.

Entries (``FlowEntry`` values):

- ``encap_flow(header, entropy=, uplink_ifindex=, mtu=)``: ``header`` is the outer
  Ethernet [+802.1Q] / IPv4 / UDP+VXLAN or GRE+NVGRE headers exactly as the slow path
  builds them for an empty inner frame (``vfp.transposition.Encap.header(0, arg)``, or
  ``packet.template.TunnelTemplate.header``). The tag, if any, becomes ``vlan_tci``
  (the kernel pushes it as an 802.1Q tag); the IPv4 header's partial sum is computed
  here; the kernel patches the lengths, the checksum and the entropy (VXLAN UDP
  source port, NVGRE FlowID) per packet, so its bytes equal the slow path's.
- ``deliver_flow(port_ifindex)``: to a local VM port; ``decap_deliver_flow``: pop the
  outer headers of an uplink frame, then to a VM port.

Each takes an optional ``InnerEdit`` (new inner MACs, TTL decrement) and up to two
``(slot, generation)`` pairs: the entry is executed only while every pair's slot of
``hnv_port_gens`` holds that generation.

Keys: ``port_key_of(ifindex, frame)`` and ``uplink_key_of(frame, vlan_id)`` build the
key the kernel builds for the same frame (``hnv_parse_inner`` in ``hnv.h``), or None
when the kernel never executes frames of that shape (not IPv4, IP options, a
fragment, not TCP/UDP/ICMP echo, a group destination MAC). They do not look at TCP
flags: a SYN has the key of its flow, though the kernel always leaves SYN, FIN and
RST to the slow path.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from openhnv.packet.checksum import ones_complement_sum
from openhnv.vswitch.fastpath.errors import FastPathError
from openhnv.vswitch.fastpath.layout import (
    ACT_DECAP_DELIVER,
    ACT_DELIVER,
    ACT_ENCAP,
    ENCAP_NVGRE,
    ENCAP_VXLAN,
    F_DEC_TTL,
    F_SET_MACS,
    F_VLAN,
    HEADER_MAX,
    MAX_GENERATIONS,
    NO_STATS,
    NVGRE_HEADER_LEN,
    UNUSED_GENERATION,
    VXLAN_HEADER_LEN,
    FlowEntry,
    FlowTuple,
    GenerationRef,
    PortKey,
    UplinkKey,
)

ETH_HEADER_LEN = 14
MAC_LEN = 6
VLAN_TAG_LEN = 4
ETHERTYPE_IPV4 = b"\x08\x00"
ETHERTYPE_VLAN = b"\x81\x00"
IPV4_NO_OPTIONS = 0x45
IPV4_HEADER_LEN = 20
IPV4_FRAGMENT_MASK = 0x3FFF
PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_GRE = 47
ICMP_ECHOES = (0, 8)  # echo reply, echo request
VXLAN_PORT = 4789
VXLAN_FLAG_I = 0x08
GRE_KEY_PRESENT = 0x2000
NVGRE_PROTOCOL = 0x6558
MAX_U16 = 0xFFFF
MAX_U32 = 0xFFFFFFFF
MAX_FLOW_ID = 0xFF
MAX_VLAN_ID = 0x0FFF
_U16 = struct.Struct("!H")
_TWO_U16 = struct.Struct("!HH")
_TOTAL_LENGTH_AT = 2
_CHECKSUM_AT = 10
# bytes of the transport header the kernel reads (TCP: up to its flags)
_L4_LOADED = {PROTO_TCP: 14, PROTO_UDP: 8}
_ICMP_LOADED = 8
_UNTAGGED_LENGTH = {PROTO_UDP: VXLAN_HEADER_LEN, PROTO_GRE: NVGRE_HEADER_LEN}


@dataclass(frozen=True, slots=True)
class InnerEdit:
    """What a routed flow does to the inner frame: new destination and source MACs,
    and whether the IPv4 TTL drops by one (the kernel misses when it is <= 1)."""

    dst_mac: bytes
    src_mac: bytes
    decrement_ttl: bool = False

    def __post_init__(self) -> None:
        for name in ("dst_mac", "src_mac"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != MAC_LEN:
                raise FastPathError(f"inner edit: {name}={value!r} is not {MAC_LEN} bytes")


def _generations(pairs: Sequence[tuple[int, int]]) -> tuple[GenerationRef, ...]:
    if len(pairs) > MAX_GENERATIONS:
        raise FastPathError(
            f"generations={list(pairs)!r}: an entry carries at most {MAX_GENERATIONS}"
        )
    refs = []
    for slot, generation in pairs:
        if not 0 <= slot < MAX_U32 or not 0 <= generation <= MAX_U32:
            raise FastPathError(f"generation pair ({slot!r}, {generation!r}): slot must be"
                                f" 0..{MAX_U32 - 1} and generation 0..{MAX_U32}")  # fmt: skip
        refs.append(GenerationRef(slot, generation))
    refs += [UNUSED_GENERATION] * (MAX_GENERATIONS - len(refs))
    return tuple(refs)


def _entry(
    action: int,
    ifindex: int,
    mtu: int,
    edit: InnerEdit | None,
    generations: Sequence[tuple[int, int]],
    *,
    flags: int = 0,
    encap: int = 0,
    header: bytes = b"",
    vlan_tci: int = 0,
    csum_partial: int = 0,
    entropy: int = 0,
) -> FlowEntry:
    if not 0 < ifindex <= MAX_U32:
        raise FastPathError(f"ifindex={ifindex!r}: not an interface index")
    if not 0 <= mtu <= MAX_U16:
        raise FastPathError(f"mtu={mtu!r}: must be 0 (unchecked) .. {MAX_U16}")
    dst_mac = src_mac = bytes(MAC_LEN)
    if edit is not None:
        flags |= F_SET_MACS | (F_DEC_TTL if edit.decrement_ttl else 0)
        dst_mac, src_mac = edit.dst_mac, edit.src_mac
    return FlowEntry(
        action, flags, encap, len(header), ifindex, mtu, vlan_tci, csum_partial, entropy,
        _generations(generations), dst_mac, src_mac, header.ljust(HEADER_MAX, b"\0"), NO_STATS,
    )  # fmt: skip


def encap_flow(
    header: bytes,
    *,
    entropy: int,
    uplink_ifindex: int,
    mtu: int,
    edit: InnerEdit | None = None,
    generations: Sequence[tuple[int, int]] = (),
) -> FlowEntry:
    """Encapsulate with ``header`` (see the module docstring) and send out of
    ``uplink_ifindex``, whose IPv4 MTU is ``mtu`` (0: unchecked)."""
    tci = 0
    flags = 0
    if header[12:14] == ETHERTYPE_VLAN and len(header) >= ETH_HEADER_LEN + VLAN_TAG_LEN:
        tci = _U16.unpack_from(header, 14)[0]
        header = header[:12] + header[16:]
        flags |= F_VLAN
    if len(header) < ETH_HEADER_LEN + IPV4_HEADER_LEN or header[12:14] != ETHERTYPE_IPV4:
        raise FastPathError(f"encap header {header.hex()}: not Ethernet [802.1Q] IPv4")
    ip = ETH_HEADER_LEN
    if header[ip] != IPV4_NO_OPTIONS:
        raise FastPathError(f"encap header: IPv4 version/IHL 0x{header[ip]:02x} is not 0x45")
    protocol = header[ip + 9]
    expected = _UNTAGGED_LENGTH.get(protocol)
    if expected is None or len(header) != expected:
        raise FastPathError(f"encap header: protocol {protocol} with {len(header)} bytes is"
                            " neither VXLAN (UDP, 50 bytes) nor NVGRE (GRE, 42 bytes)")  # fmt: skip
    l4 = ip + IPV4_HEADER_LEN
    if protocol == PROTO_UDP:
        encap = ENCAP_VXLAN
        if _U16.unpack_from(header, l4 + 2)[0] != VXLAN_PORT or not header[l4 + 8] & VXLAN_FLAG_I:
            raise FastPathError("encap header: UDP is not to port 4789 with the VXLAN I flag")
        if not 0 <= entropy <= MAX_U16:
            raise FastPathError(f"entropy={entropy!r}: a VXLAN source port is 0..{MAX_U16}")
    else:
        encap = ENCAP_NVGRE
        if _TWO_U16.unpack_from(header, l4) != (GRE_KEY_PRESENT, NVGRE_PROTOCOL):
            raise FastPathError("encap header: GRE is not NVGRE (key bit, protocol 0x6558)")
        if not 0 <= entropy <= MAX_FLOW_ID:
            raise FastPathError(f"entropy={entropy!r}: an NVGRE FlowID is 0..{MAX_FLOW_ID}")
    ip_header = bytearray(header[ip:l4])
    _U16.pack_into(ip_header, _TOTAL_LENGTH_AT, 0)
    _U16.pack_into(ip_header, _CHECKSUM_AT, 0)
    return _entry(
        ACT_ENCAP, uplink_ifindex, mtu, edit, generations, flags=flags, encap=encap,
        header=bytes(header), vlan_tci=tci, csum_partial=ones_complement_sum(bytes(ip_header)),
        entropy=entropy,
    )  # fmt: skip


def deliver_flow(
    port_ifindex: int,
    *,
    mtu: int = 0,
    edit: InnerEdit | None = None,
    generations: Sequence[tuple[int, int]] = (),
) -> FlowEntry:
    """Deliver a VM's frame to the local VM port whose veth host end is
    ``port_ifindex``."""
    return _entry(ACT_DELIVER, port_ifindex, mtu, edit, generations)


def decap_deliver_flow(
    port_ifindex: int,
    *,
    mtu: int = 0,
    edit: InnerEdit | None = None,
    generations: Sequence[tuple[int, int]] = (),
) -> FlowEntry:
    """Pop the outer headers of an uplink frame and deliver the inner frame to the VM
    port whose veth host end is ``port_ifindex``."""
    return _entry(ACT_DECAP_DELIVER, port_ifindex, mtu, edit, generations)


def flow_tuple_of(frame: bytes, offset: int = 0) -> FlowTuple | None:
    """The ``hnv_tuple`` of the Ethernet frame at ``offset``, or None (see the module
    docstring for which frames have none)."""
    o = offset
    if len(frame) < o + ETH_HEADER_LEN + IPV4_HEADER_LEN:
        return None
    if frame[o + 12 : o + 14] != ETHERTYPE_IPV4 or frame[o] & 0x01:
        return None
    ip = o + ETH_HEADER_LEN
    if frame[ip] != IPV4_NO_OPTIONS or _U16.unpack_from(frame, ip + 6)[0] & IPV4_FRAGMENT_MASK:
        return None
    protocol = frame[ip + 9]
    l4 = ip + IPV4_HEADER_LEN
    if protocol in _L4_LOADED and len(frame) >= l4 + _L4_LOADED[protocol]:
        src_port, dst_port = _TWO_U16.unpack_from(frame, l4)
    elif protocol == PROTO_ICMP and len(frame) >= l4 + _ICMP_LOADED and frame[l4] in ICMP_ECHOES:
        src_port = frame[l4] << 8 | frame[l4 + 1]
        dst_port = _U16.unpack_from(frame, l4 + 4)[0]
    else:
        return None
    return FlowTuple(
        frame[o : o + 6], frame[o + 6 : o + 12], frame[ip + 12 : ip + 16],
        frame[ip + 16 : ip + 20], src_port, dst_port, protocol,
    )  # fmt: skip


def port_key_of(ifindex: int, frame: bytes) -> PortKey | None:
    """The key ``hnv_tc_port`` builds for ``frame`` sent by the VM behind the veth host
    end ``ifindex``, or None."""
    found = flow_tuple_of(frame)
    return None if found is None else PortKey(ifindex, found)


def uplink_key_of(frame: bytes, vlan_id: int = 0) -> UplinkKey | None:
    """The key ``hnv_tc_uplink`` builds for the tunnel ``frame``, or None. A tag in the
    frame gives the VLAN; an untagged frame (the Linux driver pops the tag before the
    engine sees it) takes ``vlan_id``, its PA's VLAN (0: untagged)."""
    if frame[12:14] == ETHERTYPE_VLAN and len(frame) >= ETH_HEADER_LEN + VLAN_TAG_LEN:
        vlan_id = _U16.unpack_from(frame, 14)[0] & MAX_VLAN_ID
        frame = frame[:12] + frame[16:]
    if not 0 <= vlan_id <= MAX_VLAN_ID:
        raise FastPathError(f"vlan_id={vlan_id!r}: must be 0..{MAX_VLAN_ID}")
    ip = ETH_HEADER_LEN
    if len(frame) < ip + IPV4_HEADER_LEN or frame[12:14] != ETHERTYPE_IPV4:
        return None
    if frame[ip] != IPV4_NO_OPTIONS or _U16.unpack_from(frame, ip + 6)[0] & IPV4_FRAGMENT_MASK:
        return None
    protocol = frame[ip + 9]
    l4 = ip + IPV4_HEADER_LEN
    if protocol == PROTO_UDP and len(frame) >= l4 + 16:
        if _U16.unpack_from(frame, l4 + 2)[0] != VXLAN_PORT or not frame[l4 + 8] & VXLAN_FLAG_I:
            return None
        encap, vsid, inner = ENCAP_VXLAN, int.from_bytes(frame[l4 + 12 : l4 + 15], "big"), l4 + 16
    elif protocol == PROTO_GRE and len(frame) >= l4 + 8:
        if _TWO_U16.unpack_from(frame, l4) != (GRE_KEY_PRESENT, NVGRE_PROTOCOL):
            return None
        encap, vsid, inner = ENCAP_NVGRE, int.from_bytes(frame[l4 + 4 : l4 + 7], "big"), l4 + 8
    else:
        return None
    found = flow_tuple_of(frame, inner)
    if found is None:
        return None
    return UplinkKey(frame[ip + 12 : ip + 16], frame[ip + 16 : ip + 20], vsid, vlan_id, encap,
                     found)  # fmt: skip
