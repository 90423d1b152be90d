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
one larger than the interface's MTU is dropped (``send`` returns 0).
"""

from __future__ import annotations

import errno
import socket
import struct

from openhnv.packet.ethernet import ETHERTYPE_AT, ETHERTYPE_VLAN
from openhnv.packet.partial import finish_checksum

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


class AfPacketSocket:
    """A raw socket on one interface; ``fileno()`` makes it usable with ``selectors``."""

    __slots__ = ("_sock", "ifindex", "ifname")

    def __init__(self, ifname: str, buffer_bytes: int = SOCKET_BUFFER) -> None:
        self.ifname = ifname
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_bytes)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer_bytes)
            self._sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
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
        """Up to ``max_frames`` received frames (VLAN tags restored); [] when none wait."""
        frames: list[bytes] = []
        recvmsg = self._sock.recvmsg
        while len(frames) < max_frames:
            try:
                data, ancillary, _flags, address = recvmsg(FRAME_MAX, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                break
            if address[2] == PACKET_OUTGOING:
                continue
            for level, kind, value in ancillary:
                if level == SOL_PACKET and kind == PACKET_AUXDATA and len(value) >= _AUXDATA.size:
                    data = restore_vlan_tag(data, value)
                    if _AUXDATA.unpack_from(value)[0] & TP_STATUS_CSUMNOTREADY:
                        data = finish_checksum(data)
            frames.append(data)
        return frames

    def send(self, frame: bytes) -> int:
        """Transmit one frame as given; returns 0 if the socket buffer is full (dropped)."""
        try:
            return self._sock.send(frame)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE:  # larger than the MTU (a GSO frame): dropped
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
