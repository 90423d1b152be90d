"""The frame a connection's answer will arrive as, made from its first packet's decision.

A kernel fast path may take a TCP connection's encapsulating head down before the answer
arrives (docs/fastpath.md "Setup latency") once the slow path has decided the answer
too: this module makes the frame that decision is made from, without a packet
(``answer_frame``), and decides it (``answer_of``, behind ``VfpEngine.answer_of``). The
answer to a frame of fast key ``key`` (``packet.flowkey``), which left through ``encap``:

- inner: the forward frame as ``encap`` edits it, with the MACs, the addresses and the
  ports swapped, except the destination MAC: the receiving port's (the answer is
  delivered to it, whatever router MAC the peer's host writes as the source); the TTL
  is the default one, the flags word the forward frame's (``packet.keyframe``: a TCP
  segment with ACK only, so it opens and closes nothing);
- outer: the headers ``encap`` writes, with the PAs swapped and the receiving port's
  VSID. The UDP source port (VXLAN) or FlowID (NVGRE) is the forward flow's entropy:
  the peer's will differ, and no decision reads it.

The slow path decides such a frame and commits nothing; a key of another shape (not plain
IPv4 TCP/UDP) has no answer frame (None).
"""

from __future__ import annotations

from openhnv.packet.addresses import MAC_LEN, mac_to_bytes
from openhnv.packet.errors import PacketError
from openhnv.packet.flowkey import (
    FAST_KEY_ADDRESSES_AT,
    FAST_KEY_LEN,
    FAST_KEY_TTL_AT,
    flow_key,
    outer_key,
)
from openhnv.packet.gre import NVGRE_VSID_AT
from openhnv.packet.ipv4 import IPV4_DEFAULT_TTL, IPV4_DST_AT, IPV4_HEADER_LEN, IPV4_SRC_AT
from openhnv.packet.keyframe import frame_of_key
from openhnv.packet.udp import UDP_HEADER_LEN
from openhnv.packet.vxlan import VXLAN_VNI_AT
from openhnv.vfp.flowtable import Flow
from openhnv.vfp.offload import Answer, edited_key
from openhnv.vfp.pipeline import decide
from openhnv.vfp.policy import IN, OUT
from openhnv.vfp.state import EngineState
from openhnv.vfp.transposition import ENTROPY_MASK, Decap, Encap, LocalDelivery
from openhnv.vfp.uplink import decide_uplink

_IPV4_ADDRESS_LEN = 4
_PORT_LEN = 2
_VSID_LEN = 3  # VNI and VSID are 24 bits
_PORTS_AT = FAST_KEY_ADDRESSES_AT + 2 * _IPV4_ADDRESS_LEN


def answer_key(key: bytes, port_mac: bytes) -> bytes | None:
    """The fast key of the answer to a frame of fast key ``key`` (after its edits),
    delivered to the port of MAC ``port_mac`` (module docstring); None for another key."""
    if len(key) != FAST_KEY_LEN:
        return None
    src_ip = key[FAST_KEY_ADDRESSES_AT : FAST_KEY_ADDRESSES_AT + _IPV4_ADDRESS_LEN]
    dst_ip = key[FAST_KEY_ADDRESSES_AT + _IPV4_ADDRESS_LEN : _PORTS_AT]
    src_port = key[_PORTS_AT : _PORTS_AT + _PORT_LEN]
    dst_port = key[_PORTS_AT + _PORT_LEN : _PORTS_AT + 2 * _PORT_LEN]
    return (
        port_mac
        + key[:MAC_LEN]  # the forward destination answers
        + key[2 * MAC_LEN : FAST_KEY_TTL_AT]
        + bytes((IPV4_DEFAULT_TTL,))
        + key[FAST_KEY_TTL_AT + 1 : FAST_KEY_ADDRESSES_AT]
        + dst_ip
        + src_ip
        + dst_port
        + src_port
    )


def answer_frame(
    key: bytes, encap: Encap, entropy: int, port_mac: bytes, vsid: int
) -> bytes | None:
    """The tunnel frame the answer to a frame of fast key ``key`` that left through
    ``encap`` (entropy ``entropy``) arrives as, for the port of MAC ``port_mac`` in VSID
    ``vsid`` (module docstring); None for a key of another shape."""
    reply = answer_key(edited_key(key, encap.edit), port_mac)
    inner = None if reply is None else frame_of_key(reply)
    if inner is None:
        return None
    template = encap.template
    outer = bytearray(encap.header(len(inner), entropy & ENTROPY_MASK))
    ip = template.ip_offset
    src = outer[ip + IPV4_SRC_AT : ip + IPV4_SRC_AT + _IPV4_ADDRESS_LEN]
    dst = outer[ip + IPV4_DST_AT : ip + IPV4_DST_AT + _IPV4_ADDRESS_LEN]
    outer[ip + IPV4_SRC_AT : ip + IPV4_SRC_AT + _IPV4_ADDRESS_LEN] = dst
    outer[ip + IPV4_DST_AT : ip + IPV4_DST_AT + _IPV4_ADDRESS_LEN] = src
    if template.encapsulation == "vxlan":
        at = ip + IPV4_HEADER_LEN + UDP_HEADER_LEN + VXLAN_VNI_AT
    else:
        at = ip + IPV4_HEADER_LEN + NVGRE_VSID_AT
    outer[at : at + _VSID_LEN] = vsid.to_bytes(_VSID_LEN, "big")
    return bytes(outer) + inner


def answer_of(state: EngineState, head: Flow) -> Answer | None:
    """The decision of the answer to ``head`` (an encapsulating VM head not paired
    yet), made ahead: the slow path decides a frame of the answer (``answer_frame``)
    at the uplink and then at ``head``'s port, and commits nothing. None unless it
    would be decapsulated to that port and delivered there as the reply of
    ``head``; else the answer's decapsulation as a flow in no table, and the edit
    of its delivery."""
    table = head.table
    p = state.ports.get(table.port)
    t = head.template
    if p is None or table.direction != OUT or not isinstance(t, Encap) or not p.enabled:
        return None
    frame = answer_frame(head.key, t, head.arg, mac_to_bytes(p.mac), p.vsid)
    if frame is None:
        return None
    okey, inner_at = outer_key(frame)
    if inner_at < 0:
        return None
    try:
        ikey = flow_key(frame, inner_at)
    except PacketError:
        return None
    up, inner = decide_uplink(state, frame, outer_key=okey, inner_key=ikey)
    d = up.template
    if inner is None or not isinstance(d, Decap) or d.port != p.name:
        return None
    reply = decide(state, p, IN, frame[d.offset :], inner)
    delivery = reply.template
    if (
        reply.reply_of is not head
        or not reply.cacheable
        or reply.punt is not None
        or reply.copies is not None
        or not isinstance(delivery, LocalDelivery)
        or delivery.port != p.name
    ):
        return None
    uplink = state.uplink
    flow = Flow(okey + ikey, uplink.inbound, uplink.generation, d, 0, head.last_seen, 0, ())
    return Answer(flow, delivery.edit)
