"""An AF_PACKET raw socket on one interface: whole Ethernet frames in and out.

The socket is bound to one interface of the *current* network namespace (open it
inside ``in_namespace`` to use another), promiscuous, non-blocking, with large buffers.
``recv_batch`` skips frames the host itself sent (PACKET_OUTGOING), so a switch never
sees its own transmissions.

802.1Q: this kernel always moves a received VLAN tag out of the frame into skb
metadata before AF_PACKET sees it, whatever the ``rxvlan`` offload setting (checked on
veth, kernel 6.18). The tag comes back through PACKET_AUXDATA, and ``recv_batch``
re-inserts it, so callers always get the frame as it was on the wire. A frame its
sender left with an unfinished TCP/UDP checksum (checksum offload, ``TP_STATUS_
CSUMNOTREADY`` in the auxdata) comes back finished (``packet.partial``), as a NIC
would have sent it. Frames written with ``send`` go out exactly as given, tag included;
one larger than the interface's MTU is dropped (``send`` returns 0, ``tx_dropped``).

GSO: a sender with TSO on (or a router forwarding a peer's tunnel-GSO frame) may hand
the interface frames of up to 64 KB, which a plain socket gets whole and cannot send
on. Opened with ``segment_gso`` (the VLAN relay, ``vswitch.accessport``), the socket has
``PACKET_VNET_HDR`` and ``recv_batch`` returns such a frame as its segments, cut at the
sender's MSS as the packet ring does (``vswitch.vnet``), counted in ``rx_gso_frames`` and
``rx_gso_segments``; one it cannot cut is dropped and counted (``rx_gso_unsupported``),
as is a frame larger than ``GSO_FRAME_MAX`` or one whose GSO type no virtio_net_hdr can
describe (``recvmsg`` fails with EINVAL and the kernel frees the frame:
``rx_truncated``). Without it (captures in tests) frames come as the kernel had them.
"""

from __future__ import annotations

import errno
import socket
import struct

from openhnv.packet.ethernet import ETHERTYPE_AT, ETHERTYPE_VLAN
from openhnv.packet.partial import finish_checksum
from openhnv.vswitch.vnet import (
    GSO_FRAME_MAX,
    PACKET_VNET_HDR,
    PLAIN_FRAME,
    VNET_HEADER_LEN,
    GsoCounted,
    GsoCounts,
    take,
)

ETH_P_ALL = 0x0003
ETH_P_8021Q = ETHERTYPE_VLAN
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_CSUMNOTREADY = 0x8
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
SOCKET_BUFFER = 8 * 1024 * 1024
FRAME_MAX = 65536
# struct tpacket_auxdata: status, len, snaplen, mac, net, vlan_tci, vlan_tpid
_AUXDATA = struct.Struct("=IIIHHHH")
_ANCILLARY = socket.CMSG_SPACE(_AUXDATA.size)
_PACKET_MREQ = struct.Struct("=iHH8s")


class AfPacketSocket(GsoCounted):
    """A raw socket on one interface; ``fileno()`` makes it usable with ``selectors``."""

    __slots__ = ("_gso", "_sock", "_vnet", "ifindex", "ifname", "rx_truncated", "tx_dropped")

    def __init__(
        self, ifname: str, buffer_bytes: int = SOCKET_BUFFER, *, segment_gso: bool = False
    ) -> None:
        self.ifname = ifname
        self._vnet = segment_gso
        self._gso = GsoCounts()
        self.rx_truncated = 0
        self.tx_dropped = 0
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_bytes)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer_bytes)
            self._sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
            if segment_gso:
                self._sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
            self._sock.bind((ifname, ETH_P_ALL))
            self.ifindex = socket.if_nametoindex(ifname)
            membership = _PACKET_MREQ.pack(self.ifindex, PACKET_MR_PROMISC, 0, b"")
            self._sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, membership)
            self._sock.setblocking(False)
        except OSError:
            self._sock.close()
            raise

    @property
    def mac(self) -> bytes:
        """The interface's MAC address."""
        return bytes(self._sock.getsockname()[4])

    def fileno(self) -> int:
        return self._sock.fileno()

    def recv_batch(self, max_frames: int = 64) -> list[bytes]:
        """Up to ``max_frames`` received frames (VLAN tags restored; with ``segment_gso``,
        a GSO frame's segments in its place); [] when none wait."""
        frames: list[bytes] = []
        recvmsg = self._sock.recvmsg
        size = VNET_HEADER_LEN + GSO_FRAME_MAX if self._vnet else FRAME_MAX
        while len(frames) < max_frames:
            try:
                data, ancillary, flags, address = recvmsg(size, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if self._vnet and exc.errno == errno.EINVAL:  # a GSO type no header describes
                    self.rx_truncated += 1  # (the kernel freed the frame: read on)
                    continue
                raise
            if address[2] == PACKET_OUTGOING:
                continue
            partial = False
            vnet = data[:VNET_HEADER_LEN] if self._vnet else b""
            if vnet:
                if flags & socket.MSG_TRUNC or len(data) < VNET_HEADER_LEN:
                    self.rx_truncated += 1
                    continue
                data = data[VNET_HEADER_LEN:]
            for level, kind, value in ancillary:
                if level == SOL_PACKET and kind == PACKET_AUXDATA and len(value) >= _AUXDATA.size:
                    data = restore_vlan_tag(data, value)
                    partial = bool(_AUXDATA.unpack_from(value)[0] & TP_STATUS_CSUMNOTREADY)
            if vnet:
                take(vnet, data, partial, self._gso, frames)
            else:
                frames.append(finish_checksum(data) if partial else data)
        return frames

    def send(self, frame: bytes) -> int:
        """Transmit one frame as given; returns 0 if the socket buffer is full or the
        frame larger than the MTU (dropped, counted in ``tx_dropped``)."""
        try:
            if self._vnet:
                return self._sock.send(PLAIN_FRAME + frame) - VNET_HEADER_LEN
            return self._sock.send(frame)
        except (BlockingIOError, InterruptedError):
            self.tx_dropped += 1
            return 0
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE:  # larger than the MTU (a GSO frame): dropped
                self.tx_dropped += 1
                return 0
            raise

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> AfPacketSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def restore_vlan_tag(frame: bytes, auxdata: bytes) -> bytes:
    """Put back the 802.1Q tag that the kernel reported in ``tpacket_auxdata``."""
    status, _len, _snap, _mac, _net, tci, tpid = _AUXDATA.unpack_from(auxdata)
    if not status & TP_STATUS_VLAN_VALID:
        return frame
    if not status & TP_STATUS_VLAN_TPID_VALID or tpid == 0:
        tpid = ETH_P_8021Q
    tag = struct.pack("!HH", tpid, tci)
    return frame[:ETHERTYPE_AT] + tag + frame[ETHERTYPE_AT:]
