"""Frames received with a ``struct virtio_net_hdr`` before them: what goes on in their place.

A packet socket with ``PACKET_VNET_HDR`` (packet(7); linux/virtio_net.h) gets, before
every received frame, the 10-byte header of its skb:

    0  flags        u8   VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum is partial
    1  gso_type     u8   GSO_NONE, GSO_TCPV4, GSO_TCPV6, ... (packet.segment), | GSO_ECN
    2  hdr_len      u16
    4  gso_size     u16  the sender's MSS: the size of each segment's payload
    6  csum_start   u16
    8  csum_offset  u16

and must write one before every frame it sends (all zero: a plain frame). A GSO frame
(a VM with TSO on, a peer host's kernel fast path sending tunnel GSO) is up to 64 KB;
``take`` puts its segments, cut at ``gso_size`` by ``packet.segment``, where the frame
was, and counts them in ``GsoCounts``; a frame it cannot cut (UDP GSO, headers that do
not parse) is dropped and counted as ``unsupported``, never forwarded whole. Any other
frame goes on as it is, its partial checksum finished (``packet.partial``).

One receive path for both of the switch's socket kinds: the packet ring
(``vswitch.ring``) and the plain raw socket (``vswitch.afpacket``, the VLAN relay).
"""

from __future__ import annotations

import struct

from openhnv.packet.errors import PacketError
from openhnv.packet.partial import finish_checksum
from openhnv.packet.segment import GSO_NONE, segment

PACKET_VNET_HDR = 15
VNET_HEADER = struct.Struct("=BBHHHH")  # flags, gso_type, hdr_len, gso_size, csum_start/offset
VNET_HEADER_LEN = VNET_HEADER.size
GSO_TYPE_AT = 1
GSO_FRAME_MAX = 1 << 17  # a GSO frame is at most 64 KB (gso_max_size): room for more
PLAIN_FRAME = bytes(VNET_HEADER_LEN)
"""The header written before a frame to send: no GSO, its checksum complete."""


class GsoCounts:
    """GSO frames received by one socket: ``frames`` segmented into ``segments``, and
    ``unsupported`` ones dropped (not TCP GSO, or headers that do not parse)."""

    __slots__ = ("frames", "segments", "unsupported")

    def __init__(self) -> None:
        self.frames = 0
        self.segments = 0
        self.unsupported = 0

    def cut(self, vnet: bytes, frame: bytes, out: list[bytes]) -> None:
        """Append the segments of GSO ``frame`` (received with ``vnet``) to ``out``, or
        count it as ``unsupported``."""
        _, gso_type, _, gso_size, _, _ = VNET_HEADER.unpack(vnet)
        try:
            segments = segment(frame, gso_type, gso_size)
        except PacketError:
            self.unsupported += 1
            return
        self.frames += 1
        self.segments += len(segments)
        out += segments


class GsoCounted:
    """The GSO counters of a socket that receives with ``PACKET_VNET_HDR`` (its
    ``_gso``), under the names the driver's statistics use."""

    __slots__ = ()
    _gso: GsoCounts

    @property
    def rx_gso_frames(self) -> int:
        """GSO frames received and segmented."""
        return self._gso.frames

    @property
    def rx_gso_segments(self) -> int:
        """The segments they were cut into."""
        return self._gso.segments

    @property
    def rx_gso_unsupported(self) -> int:
        """GSO frames dropped: not TCP GSO, or headers that do not parse."""
        return self._gso.unsupported


def take(vnet: bytes, frame: bytes, partial: bool, counts: GsoCounts, out: list[bytes]) -> None:
    """Append what goes on in place of ``frame``, received with header ``vnet`` (its
    802.1Q tag already back in it): a GSO frame's segments, else the frame itself, its
    checksum finished when ``partial`` (the socket's ``TP_STATUS_CSUMNOTREADY``)."""
    if vnet[GSO_TYPE_AT] != GSO_NONE:
        counts.cut(vnet, frame, out)
    else:
        out.append(finish_checksum(frame) if partial else frame)
