"""The kernel's map keys straight from the engine's flow keys, packed.

``port_key(ifindex, key)`` is the packed ``hnv_port_key`` of the VM frames whose
engine flow key (``packet.flowkey.flow_key``) is ``key``; ``uplink_key(key,
vlan_id)`` the packed ``hnv_uplink_key`` of the tunnel frames whose key is
``outer_key`` + the inner frame's key. Both read the fields out of the engine's key
and pack them with one ``struct`` call each: a new flow's entries are made while its
completing frame waits (docs/fastpath.md), and making a frame of the key and parsing
it again (``entries.port_key_of(keyframe.frame_of_key(key))``, which they equal for
every key: tests/unit/test_vswitch_fastpath_keys.py) costs ten times as much.

None: the kernel never executes frames of that flow (not untagged IPv4 without
options, a fragment, not TCP, UDP or ICMP echo, a group destination MAC; for the
uplink, not VXLAN to its port with the I flag or NVGRE).

Key layouts (``packet.flowkey``): the fast key of IPv4 TCP/UDP (31 bytes)::

    dst[6] src[6] 0x0800 0x45 flags/fragment[2] ttl proto src_ip[4] dst_ip[4] ports[4]

an ICMP key (28 bytes): dst[6] src[6] 0x0800 0x45 proto src_ip[4] dst_ip[4] type code
identifier[2]; a tunnel key: [0x8100 tci[2]] 0x0800 0x45 proto remote_pa[4]
local_pa[4], then UDP ports[4] + VXLAN header[8], or the NVGRE header[8]; then the
inner frame's key.
"""

from __future__ import annotations

import struct

from openhnv.packet.addresses import MAC_GROUP_BIT, MAC_LEN
from openhnv.packet.ethernet import (
    ETHERTYPE_AT,
    ETHERTYPE_IPV4_BYTES,
    ETHERTYPE_VLAN_BYTES,
    VLAN_ID_MAX,
    VLAN_TAG_LEN,
)
from openhnv.packet.flowkey import (
    FAST_KEY_ADDRESSES_AT,
    FAST_KEY_FLAGS_AT,
    FAST_KEY_LEN,
    FAST_KEY_PROTOCOL_AT,
    IPV4_KEY_PROTOCOL_AT,
)
from openhnv.packet.gre import NVGRE_BITS, NVGRE_HEADER_LEN, NVGRE_PROTOCOL, NVGRE_VSID_AT
from openhnv.packet.icmp import ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST
from openhnv.packet.ipv4 import (
    IPV4_FRAGMENT_BITS,
    IPV4_NO_OPTIONS,
    PROTO_GRE,
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
)
from openhnv.packet.vxlan import (
    VXLAN_FLAG_I,
    VXLAN_FLAGS_AT,
    VXLAN_HEADER_LEN,
    VXLAN_PORT,
    VXLAN_VNI_AT,
)
from openhnv.vswitch.fastpath.errors import FastPathError
from openhnv.vswitch.fastpath.layout import ENCAP_NVGRE, ENCAP_VXLAN, PortKey, UplinkKey

_TUPLE = "6s6s4s4sHHB3x"  # struct hnv_tuple (layout.FlowTuple)
PORT_KEY = struct.Struct("=I" + _TUPLE)
"""``struct hnv_port_key`` (layout.PortKey)."""
UPLINK_KEY = struct.Struct("=4s4sIHBx" + _TUPLE)
"""``struct hnv_uplink_key`` (layout.UplinkKey)."""
assert PORT_KEY.size == PortKey.size()
assert UPLINK_KEY.size == UplinkKey.size()

_IPV4_HEAD = ETHERTYPE_IPV4_BYTES + bytes((IPV4_NO_OPTIONS,))
_HEAD_END = ETHERTYPE_AT + len(_IPV4_HEAD)
_FAST_KEY = struct.Struct("!12x3sH1xB4s4sHH")  # head, flags word, protocol, addresses, ports
_ICMP_KEY = struct.Struct("!12x3sB4s4sBBH")  # head, protocol, addresses, type, code, id
_ICMP_ECHOES = (ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST)
_ICMP_TYPE_SHIFT = 8
_PORT_PROTOCOLS = (PROTO_TCP, PROTO_UDP)
_U16 = struct.Struct("!H")
_TWO_U16 = struct.Struct("!HH")
_VSID_LEN = 3
# a tunnel key after its tag: EtherType and version/IHL, protocol, PAs, then the rest
_OUTER_PROTOCOL_AT = len(_IPV4_HEAD)
_OUTER_PAS_AT = _OUTER_PROTOCOL_AT + 1
_PA_LEN = 4
_OUTER_REST_AT = _OUTER_PAS_AT + 2 * _PA_LEN
_UDP_PORTS_LEN = 4
_VXLAN_AT = _OUTER_REST_AT + _UDP_PORTS_LEN
_VXLAN_DST_PORT_AT = _OUTER_REST_AT + 2
_VXLAN_OUTER_KEY_LEN = _VXLAN_AT + VXLAN_HEADER_LEN
_NVGRE_OUTER_KEY_LEN = _OUTER_REST_AT + NVGRE_HEADER_LEN

# assumptions about packet.flowkey's layouts, checked once
assert FAST_KEY_FLAGS_AT == _HEAD_END
assert FAST_KEY_PROTOCOL_AT == _HEAD_END + 3
assert FAST_KEY_ADDRESSES_AT == FAST_KEY_PROTOCOL_AT + 1
assert IPV4_KEY_PROTOCOL_AT == _HEAD_END
_ICMP_KEY_LEN = _ICMP_KEY.size

Tuple = tuple[bytes, bytes, bytes, bytes, int, int, int]


def _tuple(key: bytes, at: int = 0) -> Tuple | None:
    """The ``hnv_tuple`` fields of the frames whose flow key is ``key[at:]``, or None."""
    size = len(key) - at
    if size not in (FAST_KEY_LEN, _ICMP_KEY_LEN) or key[at] & MAC_GROUP_BIT:
        return None
    dst, src = key[at : at + MAC_LEN], key[at + MAC_LEN : at + ETHERTYPE_AT]
    if size == FAST_KEY_LEN:
        head, word, protocol, sip, dip, sport, dport = _FAST_KEY.unpack_from(key, at)
        if head != _IPV4_HEAD or word & IPV4_FRAGMENT_BITS or protocol not in _PORT_PROTOCOLS:
            return None
        return dst, src, sip, dip, sport, dport, protocol
    if size == _ICMP_KEY_LEN:
        head, protocol, sip, dip, kind, code, ident = _ICMP_KEY.unpack_from(key, at)
        if head != _IPV4_HEAD or protocol != PROTO_ICMP or kind not in _ICMP_ECHOES:
            return None
        return dst, src, sip, dip, kind << _ICMP_TYPE_SHIFT | code, ident, protocol
    return None


def port_key(ifindex: int, key: bytes) -> bytes | None:
    """The packed key ``hnv_tc_port`` builds for the frames of flow ``key`` sent by the
    VM behind the veth host end ``ifindex`` (module docstring)."""
    found = _tuple(key)
    return None if found is None else PORT_KEY.pack(ifindex, *found)


def local_pa(key: bytes) -> bytes | None:
    """The destination (local) PA of a tunnel key, or None when ``key`` is none."""
    tag = VLAN_TAG_LEN if key[:2] == ETHERTYPE_VLAN_BYTES else 0
    if key[tag : tag + _OUTER_PROTOCOL_AT] != _IPV4_HEAD or len(key) < tag + _OUTER_REST_AT:
        return None
    at = tag + _OUTER_PAS_AT + _PA_LEN
    return key[at : at + _PA_LEN]


def uplink_key(key: bytes, vlan_id: int = 0, *, tag_wins: bool = True) -> bytes | None:
    """The packed key ``hnv_tc_uplink`` builds for the tunnel frames of flow ``key``
    (module docstring). The VLAN is the key's tag (unless not ``tag_wins``), else
    ``vlan_id`` (the PA's: the Linux driver pops the tag before the engine sees it)."""
    tag = 0
    if key[:2] == ETHERTYPE_VLAN_BYTES:
        tag = VLAN_TAG_LEN
        if tag_wins:
            vlan_id = _U16.unpack_from(key, 2)[0] & VLAN_ID_MAX
    if not 0 <= vlan_id <= VLAN_ID_MAX:
        raise FastPathError(f"vlan_id={vlan_id!r}: must be 0..{VLAN_ID_MAX}")
    if key[tag : tag + _OUTER_PROTOCOL_AT] != _IPV4_HEAD or len(key) <= tag + _OUTER_PROTOCOL_AT:
        return None
    protocol = key[tag + _OUTER_PROTOCOL_AT]
    if protocol == PROTO_UDP:
        inner = tag + _VXLAN_OUTER_KEY_LEN
        if len(key) < inner:
            return None
        vxlan = tag + _VXLAN_AT
        if (
            _U16.unpack_from(key, tag + _VXLAN_DST_PORT_AT)[0] != VXLAN_PORT
            or not key[vxlan + VXLAN_FLAGS_AT] & VXLAN_FLAG_I
        ):
            return None
        at = vxlan + VXLAN_VNI_AT
        encap = ENCAP_VXLAN
    elif protocol == PROTO_GRE:
        inner = tag + _NVGRE_OUTER_KEY_LEN
        gre = tag + _OUTER_REST_AT
        if len(key) < inner or _TWO_U16.unpack_from(key, gre) != (NVGRE_BITS, NVGRE_PROTOCOL):
            return None
        at = gre + NVGRE_VSID_AT
        encap = ENCAP_NVGRE
    else:
        return None
    found = _tuple(key, inner)
    if found is None:
        return None
    vsid = int.from_bytes(key[at : at + _VSID_LEN], "big")
    pas = tag + _OUTER_PAS_AT
    remote, local = key[pas : pas + _PA_LEN], key[pas + _PA_LEN : pas + 2 * _PA_LEN]
    return UPLINK_KEY.pack(remote, local, vsid, vlan_id, encap, *found)
