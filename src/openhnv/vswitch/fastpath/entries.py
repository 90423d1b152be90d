"""Fast-path entries from the slow path's decisions, and the kernel's keys of frames.

Entries (``FlowEntry`` values):

- ``encap_flow(header, entropy=, uplink_ifindex=, mtu=)``: ``header`` is the outer
  Ethernet [+802.1Q] / IPv4 / UDP+VXLAN or GRE+NVGRE headers exactly as the slow path
  builds them for an empty inner frame (``packet.template.TunnelTemplate.header``, or
  ``header_for(0, entropy)``, which the engine's ``vfp.transposition.Encap`` sends
  with). The tag, if any, becomes ``vlan_tci`` (the kernel pushes it as an 802.1Q tag);
  the IPv4 header's partial sum is the template's (``TunnelTemplate.partial_sum``); the
  kernel patches the lengths, the checksum and the entropy (VXLAN UDP source port,
  NVGRE FlowID) per packet, so its bytes equal the slow path's.
- ``deliver_flow(port_ifindex)``: to a local VM port; ``decap_deliver_flow``: pop the
  outer headers of an uplink frame, then to a VM port.

Each takes an optional ``EntryEdit`` (new inner MACs, TTL decrement) and up to two
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
from typing import Literal

from openhnv.packet.addresses import MAC_GROUP_BIT, MAC_LEN
from openhnv.packet.checksum import update_checksum_word
from openhnv.packet.ethernet import (
    ETHERNET_HEADER_LEN,
    ETHERTYPE_AT,
    ETHERTYPE_IPV4_BYTES,
    ETHERTYPE_VLAN_BYTES,
    VLAN_ID_MAX,
    VLAN_TAG_LEN,
    VLAN_TCI_AT,
)
from openhnv.packet.frames import (
    NVGRE_OUTER_LEN,
    VXLAN_OUTER_LEN,
    icmp_echo_frame,
    nvgre_encapsulate,
    tcp_frame,
    udp_frame,
    vxlan_encapsulate,
)
from openhnv.packet.gre import (
    NVGRE_BITS,
    NVGRE_FLOW_ID_MAX,
    NVGRE_HEADER_LEN,
    NVGRE_PROTOCOL,
    NVGRE_VSID_AT,
)
from openhnv.packet.icmp import (
    ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST,
    ICMP_HEADER_LEN,
    ICMP_IDENTIFIER_AT,
)
from openhnv.packet.ipv4 import (
    IPV4_CHECKSUM_AT,
    IPV4_DST_AT,
    IPV4_FLAG_DF,
    IPV4_FLAGS_AT,
    IPV4_FRAGMENT_BITS,
    IPV4_HEADER_LEN,
    IPV4_NO_OPTIONS,
    IPV4_PROTOCOL_AT,
    IPV4_SRC_AT,
    PROTO_GRE,
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
)
from openhnv.packet.tcp import TCP_ACK, TCP_FLAGS_AT
from openhnv.packet.template import TunnelTemplate
from openhnv.packet.udp import UDP_DST_PORT_AT, UDP_HEADER_LEN
from openhnv.packet.vxlan import (
    VXLAN_FLAG_I,
    VXLAN_HEADER_LEN,
    VXLAN_PORT,
    VXLAN_SOURCE_PORT_MAX,
    VXLAN_SOURCE_PORT_MIN,
    VXLAN_VNI_AT,
)
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
    UNUSED_GENERATION,
    FlowEntry,
    FlowTuple,
    GenerationRef,
    PortKey,
    UplinkKey,
)

ICMP_ECHOES = (ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST)
MAX_U16 = 0xFFFF
MAX_U32 = 0xFFFFFFFF
_U16 = struct.Struct("!H")
_TWO_U16 = struct.Struct("!HH")
_VSID_LEN = 3  # the 24-bit VNI / VSID
# bytes of the transport header the kernel reads (TCP: up to its flags)
_L4_LOADED = {PROTO_TCP: TCP_FLAGS_AT + 1, PROTO_UDP: UDP_HEADER_LEN}
_ICMP_LOADED = ICMP_HEADER_LEN
_UNTAGGED_LENGTH = {PROTO_UDP: VXLAN_OUTER_LEN, PROTO_GRE: NVGRE_OUTER_LEN}
_ENCAPSULATIONS: dict[int, Literal["vxlan", "nvgre"]] = {PROTO_UDP: "vxlan", PROTO_GRE: "nvgre"}
# offsets into an untagged frame
_IP = ETHERNET_HEADER_LEN
_L4 = _IP + IPV4_HEADER_LEN
_ETHERTYPE = slice(ETHERTYPE_AT, ETHERNET_HEADER_LEN)
_TAG_END = ETHERTYPE_AT + VLAN_TAG_LEN


@dataclass(frozen=True, slots=True)
class EntryEdit:
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
    edit: EntryEdit | None,
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
    edit: EntryEdit | None = None,
    generations: Sequence[tuple[int, int]] = (),
) -> FlowEntry:
    """Encapsulate with ``header`` (see the module docstring) and send out of
    ``uplink_ifindex``, whose IPv4 MTU is ``mtu`` (0: unchecked)."""
    tci = 0
    flags = 0
    if header[_ETHERTYPE] == ETHERTYPE_VLAN_BYTES and len(header) >= _TAG_END + 2:
        tci = _U16.unpack_from(header, VLAN_TCI_AT)[0]
        header = header[:ETHERTYPE_AT] + header[_TAG_END:]
        flags |= F_VLAN
    if len(header) < _L4 or header[_ETHERTYPE] != ETHERTYPE_IPV4_BYTES:
        raise FastPathError(f"encap header {header.hex()}: not Ethernet [802.1Q] IPv4")
    if header[_IP] != IPV4_NO_OPTIONS:
        raise FastPathError(
            f"encap header: IPv4 version/IHL 0x{header[_IP]:02x} is not {IPV4_NO_OPTIONS:#x}"
        )
    protocol = header[_IP + IPV4_PROTOCOL_AT]
    expected = _UNTAGGED_LENGTH.get(protocol)
    if expected is None or len(header) != expected:
        raise FastPathError(
            f"encap header: protocol {protocol} with {len(header)} bytes is neither VXLAN"
            f" (UDP, {VXLAN_OUTER_LEN} bytes) nor NVGRE (GRE, {NVGRE_OUTER_LEN} bytes)"
        )
    if protocol == PROTO_UDP:
        encap = ENCAP_VXLAN
        vxlan = _L4 + UDP_HEADER_LEN
        if (
            _U16.unpack_from(header, _L4 + UDP_DST_PORT_AT)[0] != VXLAN_PORT
            or not header[vxlan] & VXLAN_FLAG_I
        ):
            raise FastPathError(
                f"encap header: UDP is not to port {VXLAN_PORT} with the VXLAN I flag"
            )
        if not 0 <= entropy <= VXLAN_SOURCE_PORT_MAX:
            raise FastPathError(
                f"entropy={entropy!r}: a VXLAN source port is 0..{VXLAN_SOURCE_PORT_MAX}"
            )
    else:
        encap = ENCAP_NVGRE
        if _TWO_U16.unpack_from(header, _L4) != (NVGRE_BITS, NVGRE_PROTOCOL):
            raise FastPathError(
                f"encap header: GRE is not NVGRE (key bit, protocol {NVGRE_PROTOCOL:#06x})"
            )
        if not 0 <= entropy <= NVGRE_FLOW_ID_MAX:
            raise FastPathError(f"entropy={entropy!r}: an NVGRE FlowID is 0..{NVGRE_FLOW_ID_MAX}")
    template = TunnelTemplate(_ENCAPSULATIONS[protocol], bytes(header), _IP)
    return _entry(
        ACT_ENCAP, uplink_ifindex, mtu, edit, generations, flags=flags, encap=encap,
        header=template.header, vlan_tci=tci, csum_partial=template.partial_sum,
        entropy=entropy,
    )  # fmt: skip


def deliver_flow(
    port_ifindex: int,
    *,
    mtu: int = 0,
    edit: EntryEdit | None = None,
    generations: Sequence[tuple[int, int]] = (),
) -> FlowEntry:
    """Deliver a VM's frame to the local VM port whose veth host end is
    ``port_ifindex``."""
    return _entry(ACT_DELIVER, port_ifindex, mtu, edit, generations)


def decap_deliver_flow(
    port_ifindex: int,
    *,
    mtu: int = 0,
    edit: EntryEdit | None = None,
    generations: Sequence[tuple[int, int]] = (),
) -> FlowEntry:
    """Pop the outer headers of an uplink frame and deliver the inner frame to the VM
    port whose veth host end is ``port_ifindex``."""
    return _entry(ACT_DECAP_DELIVER, port_ifindex, mtu, edit, generations)


def flow_tuple_of(frame: bytes, offset: int = 0) -> FlowTuple | None:
    """The ``hnv_tuple`` of the Ethernet frame at ``offset``, or None (see the module
    docstring for which frames have none)."""
    o = offset
    if len(frame) < o + _L4:
        return None
    if frame[o + ETHERTYPE_AT : o + ETHERNET_HEADER_LEN] != ETHERTYPE_IPV4_BYTES:
        return None
    if frame[o] & MAC_GROUP_BIT:
        return None
    ip = o + _IP
    fragment = _U16.unpack_from(frame, ip + IPV4_FLAGS_AT)[0] & IPV4_FRAGMENT_BITS
    if frame[ip] != IPV4_NO_OPTIONS or fragment:
        return None
    protocol = frame[ip + IPV4_PROTOCOL_AT]
    l4 = ip + IPV4_HEADER_LEN
    if protocol in _L4_LOADED and len(frame) >= l4 + _L4_LOADED[protocol]:
        src_port, dst_port = _TWO_U16.unpack_from(frame, l4)
    elif protocol == PROTO_ICMP and len(frame) >= l4 + _ICMP_LOADED and frame[l4] in ICMP_ECHOES:
        src_port = frame[l4] << 8 | frame[l4 + 1]  # type and code
        dst_port = _U16.unpack_from(frame, l4 + ICMP_IDENTIFIER_AT)[0]
    else:
        return None
    return FlowTuple(
        frame[o : o + MAC_LEN], frame[o + MAC_LEN : o + ETHERTYPE_AT],
        frame[ip + IPV4_SRC_AT : ip + IPV4_DST_AT], frame[ip + IPV4_DST_AT : l4],
        src_port, dst_port, protocol,
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
    if frame[_ETHERTYPE] == ETHERTYPE_VLAN_BYTES and len(frame) >= _TAG_END + 2:
        vlan_id = _U16.unpack_from(frame, VLAN_TCI_AT)[0] & VLAN_ID_MAX
        frame = frame[:ETHERTYPE_AT] + frame[_TAG_END:]
    if not 0 <= vlan_id <= VLAN_ID_MAX:
        raise FastPathError(f"vlan_id={vlan_id!r}: must be 0..{VLAN_ID_MAX}")
    if len(frame) < _L4 or frame[_ETHERTYPE] != ETHERTYPE_IPV4_BYTES:
        return None
    fragment = _U16.unpack_from(frame, _IP + IPV4_FLAGS_AT)[0] & IPV4_FRAGMENT_BITS
    if frame[_IP] != IPV4_NO_OPTIONS or fragment:
        return None
    protocol = frame[_IP + IPV4_PROTOCOL_AT]
    if protocol == PROTO_UDP and len(frame) >= _L4 + UDP_HEADER_LEN + VXLAN_HEADER_LEN:
        vxlan = _L4 + UDP_HEADER_LEN
        if (
            _U16.unpack_from(frame, _L4 + UDP_DST_PORT_AT)[0] != VXLAN_PORT
            or not frame[vxlan] & VXLAN_FLAG_I
        ):
            return None
        vni = vxlan + VXLAN_VNI_AT
        encap, vsid = ENCAP_VXLAN, int.from_bytes(frame[vni : vni + _VSID_LEN], "big")
        inner = vxlan + VXLAN_HEADER_LEN
    elif protocol == PROTO_GRE and len(frame) >= _L4 + NVGRE_HEADER_LEN:
        if _TWO_U16.unpack_from(frame, _L4) != (NVGRE_BITS, NVGRE_PROTOCOL):
            return None
        at = _L4 + NVGRE_VSID_AT
        encap, vsid = ENCAP_NVGRE, int.from_bytes(frame[at : at + _VSID_LEN], "big")
        inner = _L4 + NVGRE_HEADER_LEN
    else:
        return None
    found = flow_tuple_of(frame, inner)
    if found is None:
        return None
    return UplinkKey(
        frame[_IP + IPV4_SRC_AT : _IP + IPV4_DST_AT], frame[_IP + IPV4_DST_AT : _L4], vsid,
        vlan_id, encap, found,
    )  # fmt: skip


# -- back to frames, for a revalidator ------------------------------------------------


_SYNTHETIC_TTL = 64
_FLAGS_SHIFT = 13  # the 3 flag bits above the 13-bit fragment offset
_ICMP_TYPE_SHIFT = 8


def _mac(raw: bytes) -> str:
    return raw.hex(":")


def frame_of_flow(flow: FlowTuple) -> bytes | None:
    """A frame of the kernel's ``flow`` (TCP with ACK only, UDP, or ICMP echo), for a
    revalidator that decides the flow again; None for another protocol. TCP and UDP
    carry DF and TTL 64 as a Linux VM's do, so that the engine keys them as it keys the
    VM's own frames."""
    src_mac, dst_mac = _mac(flow.src_mac), _mac(flow.dst_mac)
    if flow.protocol == PROTO_TCP:
        tcp = tcp_frame(src_mac=src_mac, dst_mac=dst_mac, src_ip=flow.src_ip,
                        dst_ip=flow.dst_ip, src_port=flow.src_port, dst_port=flow.dst_port,
                        flags=TCP_ACK, ttl=_SYNTHETIC_TTL)  # fmt: skip
        return _dont_fragment(tcp)
    if flow.protocol == PROTO_UDP:
        udp = udp_frame(src_mac=src_mac, dst_mac=dst_mac, src_ip=flow.src_ip,
                        dst_ip=flow.dst_ip, src_port=flow.src_port, dst_port=flow.dst_port,
                        ttl=_SYNTHETIC_TTL)  # fmt: skip
        return _dont_fragment(udp)
    kind = flow.src_port >> _ICMP_TYPE_SHIFT
    if flow.protocol == PROTO_ICMP and kind in ICMP_ECHOES:
        return icmp_echo_frame(src_mac=src_mac, dst_mac=dst_mac, src_ip=flow.src_ip,
                               dst_ip=flow.dst_ip, identifier=flow.dst_port,
                               reply=kind == ICMP_ECHO_REPLY, ttl=_SYNTHETIC_TTL)  # fmt: skip
    return None


def _dont_fragment(frame: bytes) -> bytes:
    """``frame`` (untagged IPv4) with DF set and its header checksum updated."""
    at = _IP + IPV4_FLAGS_AT
    word = _U16.unpack_from(frame, at)[0]
    new = word | IPV4_FLAG_DF << _FLAGS_SHIFT
    checksum_at = _IP + IPV4_CHECKSUM_AT
    checksum = update_checksum_word(_U16.unpack_from(frame, checksum_at)[0], word, new)
    out = bytearray(frame)
    _U16.pack_into(out, at, new)
    _U16.pack_into(out, checksum_at, checksum)
    return bytes(out)


def frame_of_uplink_key(key: UplinkKey) -> bytes | None:
    """A tunnel frame the kernel would key as ``key`` (untagged: the switch sees frames
    with their tag popped), outer MACs zero, for a revalidator."""
    inner = frame_of_flow(key.flow)
    if inner is None:
        return None
    zero = bytes(MAC_LEN)
    if key.encap == ENCAP_VXLAN:
        return vxlan_encapsulate(inner, outer_src_mac=zero, outer_dst_mac=zero,
                                 src_pa=key.remote_pa, dst_pa=key.local_pa, vni=key.vsid,
                                 src_port=VXLAN_SOURCE_PORT_MIN)  # fmt: skip
    if key.encap == ENCAP_NVGRE:
        return nvgre_encapsulate(inner, outer_src_mac=zero, outer_dst_mac=zero,
                                 src_pa=key.remote_pa, dst_pa=key.local_pa, vsid=key.vsid,
                                 flow_id=0)  # fmt: skip
    return None
