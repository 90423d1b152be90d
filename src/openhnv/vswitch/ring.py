"""An AF_PACKET socket with memory-mapped receive and transmit rings (TPACKET_V2).

The kernel writes received frames into a ring shared with us and we read them without
a system call per frame; frames to send are written into a second ring and one
``send`` call hands the kernel every frame written since the last flush. This is what
makes a Python switch fast enough: a ``recvmsg``/``send`` pair costs about 3 µs per
packet here, a slot of a ring a few hundred nanoseconds.

Ring slot (``struct tpacket2_hdr``, linux/if_packet.h), each slot ``FRAME_SIZE`` bytes:

    0  tp_status  u32   TP_STATUS_USER (1) when the kernel filled it for us
    4  tp_len     u32   length of the frame on the wire
    8  tp_snaplen u32   bytes stored (smaller: the frame did not fit the slot)
    12 tp_mac     u16   offset of the Ethernet header in the slot
    14 tp_net     u16
    16 tp_sec, tp_nsec
    24 tp_vlan_tci u16, tp_vlan_tpid u16   the 802.1Q tag the kernel took off
    32 struct sockaddr_ll, then the frame at tp_mac

A transmit slot holds the same header with the frame at offset 32; its status goes
TP_STATUS_SEND_REQUEST (1) -> kernel -> TP_STATUS_AVAILABLE (0).

The socket has ``PACKET_VNET_HDR``: a received frame is preceded by the ``struct
virtio_net_hdr`` of its skb (10 bytes just before ``tp_mac``: GSO type and size), and a
transmit slot carries one (left all zero: a plain frame) before its frame.

GSO super-frames (a VM with TSO on, or a tunnel-GSO frame from a peer host's kernel
fast path on an uplink) are up to 64 KB, larger than a slot. With
``PACKET_COPY_THRESH`` set, the kernel (``tpacket_rcv``, net/packet/af_packet.c) still
fills a slot with the frame's first bytes, marks it ``TP_STATUS_COPY`` and queues the
whole frame on the socket's receive queue, in slot order; ``recv_batch`` takes it with
one ``recvmsg`` and cuts it at the sender's ``gso_size`` (``packet.segment``), so the
switch gets the segments in the frame's place. Counted per ring: ``rx_gso_frames`` and
``rx_gso_segments``; dropped with a reason: ``rx_gso_unsupported`` (not TCP GSO, or
headers that do not parse), ``rx_copy_refused`` (the kernel queued no copy: the
socket's receive buffer was full); ``rx_truncated`` only for a frame that really was
cut (a copy slot without its copy, or a copy larger than ``COPY_MAX``).

The socket ignores what it sends itself (PACKET_IGNORE_OUTGOING), bypasses the qdisc,
is promiscuous and non-blocking. Received 802.1Q tags are put back into the frame, as
``afpacket.AfPacketSocket`` does, so callers see frames as they were on the wire. A
frame its sender left with an unfinished TCP/UDP checksum (checksum offload on: the
slot says ``TP_STATUS_CSUMNOTREADY``) is finished here (``packet.partial``), so the
switch forwards only frames a receiver accepts.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import mmap
import socket
import struct
from collections.abc import Callable, Iterable, Mapping

from openhnv.packet.ethernet import ETHERNET_HEADER_LEN, ETHERTYPE_AT
from openhnv.packet.partial import finish_checksum
from openhnv.packet.segment import GSO_NONE
from openhnv.vswitch.afpacket import (
    ETH_P_8021Q,
    ETH_P_ALL,
    PACKET_ADD_MEMBERSHIP,
    PACKET_MR_PROMISC,
    SOL_PACKET,
    TP_STATUS_VLAN_TPID_VALID,
    TP_STATUS_VLAN_VALID,
)
from openhnv.vswitch.errors import DeviceError
from openhnv.vswitch.vnet import (
    GSO_FRAME_MAX,
    PACKET_VNET_HDR,
    VNET_HEADER_LEN,
    GsoCounted,
    GsoCounts,
    take,
)

PACKET_RX_RING = 5
PACKET_VERSION = 10
PACKET_TX_RING = 13
PACKET_QDISC_BYPASS = 20
PACKET_IGNORE_OUTGOING = 23
PACKET_LOSS = 14
PACKET_STATISTICS = 6
TPACKET_V2 = 1
TP_STATUS_USER = 1
TP_STATUS_SEND_REQUEST = 1
TP_STATUS_AVAILABLE = 0
TP_STATUS_COPY = 0x2
TP_STATUS_CSUMNOTREADY = 0x8
TP_STATUS_GSO_TCP = 0x100
# slots that need more than a copy (a GSO frame always has a partial checksum)
_SPECIAL = TP_STATUS_VLAN_VALID | TP_STATUS_CSUMNOTREADY | TP_STATUS_GSO_TCP
_PARTIAL = TP_STATUS_CSUMNOTREADY | TP_STATUS_GSO_TCP
PACKET_COPY_THRESH = 7
COPY_THRESHOLD = 1  # any value: frames larger than a slot are queued whole
SO_RCVBUFFORCE = 33  # socket(7): SO_RCVBUF beyond rmem_max (CAP_NET_ADMIN)
COPY_BUFFER = 4 * 1024 * 1024  # the receive queue of whole copies (the kernel doubles it)
COPY_MAX = GSO_FRAME_MAX
_GSO_TYPE_BACK = VNET_HEADER_LEN - 1  # gso_type sits this many bytes before the frame
SIOCGIFMTU = 0x8921
_IFREQ = struct.Struct("16si12x")  # struct ifreq: name, then ifr_mtu in the union
FRAME_SIZE = 2048  # a slot: the header (76 bytes before the frame) plus a 1700-MTU frame
BLOCK_SIZE = 1 << 16
RX_FRAMES = 2048
TX_FRAMES = 1024
SO_SNDBUFFORCE = 32  # socket(7): SO_SNDBUF beyond wmem_max (CAP_NET_ADMIN)
SEND_BUFFER_PER_SLOT = 2  # a queued frame's truesize: its slot's bytes and the skb's
TX_DATA_OFFSET = 32  # TPACKET2_HDRLEN - sizeof(struct sockaddr_ll): the virtio_net_hdr
TX_FRAME_AT = TX_DATA_OFFSET + VNET_HEADER_LEN  # the frame after the (all-zero) vnet header
TPACKET2_HDRLEN = 52  # TPACKET_ALIGN(sizeof(struct tpacket2_hdr)) + sizeof(sockaddr_ll)
TPACKET_ALIGNMENT = 16
_MIN_MAC_ROOM = 16  # tpacket_rcv leaves at least 16 bytes for the link-layer header
# where tpacket_rcv puts an Ethernet frame in a slot (tp_mac): netoff, the aligned end of
# the headers and the room for the MAC header, plus the vnet header, minus the MAC header
RX_FRAME_AT = (
    -(-(TPACKET2_HDRLEN + _MIN_MAC_ROOM) // TPACKET_ALIGNMENT) * TPACKET_ALIGNMENT
    + VNET_HEADER_LEN
    - ETHERNET_HEADER_LEN
)
MAX_FRAME = FRAME_SIZE - RX_FRAME_AT
RING_COUNTERS = (
    "rx_truncated",
    "rx_copy_refused",
    "rx_gso_frames",
    "rx_gso_segments",
    "rx_gso_unsupported",
)
"""Each ring's receive counters (summed over rings by the driver's ``statistics``)."""
RECEIVE_COUNTERS = (
    "rx_frames",
    *RING_COUNTERS,
    "rx_dropped_ring",
    "tx_dropped_ring",
    "tx_failed_flushes",
)
"""What ``receive_counters`` reports of one ring, named as the driver's ``statistics``
names their sums (``rx_frames``: the slots read, a GSO frame counting once)."""
_REQ = struct.Struct("=IIII")  # struct tpacket_req: block_size, block_nr, frame_size, frame_nr
_MREQ = struct.Struct("=iHH8s")
_RX_HEADER = struct.Struct("=IIIH")  # status, len, snaplen, mac
_RX_VLAN = struct.Struct("=HH")  # at 24: tp_vlan_tci, tp_vlan_tpid
_RX_VLAN_OFFSET = 24
_TX_HEADER = struct.Struct("=II")  # status, len (snaplen follows, unused on send)
_STATS = struct.Struct("=II")  # struct tpacket_stats: tp_packets, tp_drops (reset on read)
_ZERO = b"\0\0\0\0"
_COPY_TRIES = 10


def _tag(mm: mmap.mmap, base: int, status: int) -> bytes:
    """The 802.1Q tag the kernel took off the slot's frame."""
    tci, tpid = _RX_VLAN.unpack_from(mm, base + _RX_VLAN_OFFSET)
    if not status & TP_STATUS_VLAN_TPID_VALID or tpid == 0:
        tpid = ETH_P_8021Q
    return struct.pack("!HH", tpid, tci)


def _with_tag(mm: mmap.mmap, base: int, status: int, start: int, length: int) -> bytes:
    """The frame at ``start`` with the 802.1Q tag the kernel took off put back."""
    tag = _tag(mm, base, status)
    return mm[start : start + ETHERTYPE_AT] + tag + mm[start + ETHERTYPE_AT : start + length]


_EMPTY = [b""]


@functools.lru_cache(maxsize=1024)
def _priority_message(priority: int) -> tuple[int, int, bytes]:
    """The ``SO_PRIORITY`` control message of ``priority`` (one per class, cached)."""
    return socket.SOL_SOCKET, socket.SO_PRIORITY, struct.pack("=i", priority)


def counters_of(rings: Callable[[], Mapping[str, PacketRing]]) -> dict[str, dict[str, int]]:
    """The ``receive_counters`` of each ring that ``rings()`` names (asked again when the
    polling thread changes the mapping while it is copied; {} if it never holds still)."""
    found: dict[str, PacketRing] = {}
    for _ in range(_COPY_TRIES):
        try:
            found = dict(rings())
            break
        except RuntimeError:  # changed size during iteration
            continue
    return {name: ring.receive_counters() for name, ring in found.items()}


class PacketRing(GsoCounted):
    """Raw frames in and out of one interface through mmap'd TPACKET_V2 rings."""

    __slots__ = (
        "_gso",
        "_mm",
        "_rx_head",
        "_rx_slots",
        "_sock",
        "_tx_base",
        "_tx_head",
        "_tx_pending",
        "_tx_slots",
        "ifindex",
        "ifname",
        "rx_copy_refused",
        "rx_dropped",
        "rx_frames",
        "rx_truncated",
        "tx_dropped",
        "tx_failed_flushes",
    )

    def __init__(self, ifname: str, rx_frames: int = RX_FRAMES, tx_frames: int = TX_FRAMES) -> None:
        per_block = BLOCK_SIZE // FRAME_SIZE
        if rx_frames % per_block or tx_frames % per_block:
            raise DeviceError(f"ring sizes must be multiples of {per_block} frames")
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        mm: mmap.mmap | None = None
        try:
            s = sock
            s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
            s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)  # before the rings (else EBUSY)
            s.setsockopt(SOL_PACKET, PACKET_COPY_THRESH, COPY_THRESHOLD)
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, COPY_BUFFER)
            s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            s.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
            s.setsockopt(SOL_PACKET, PACKET_LOSS, 1)  # skip a malformed frame, do not stall
            for option, frames in ((PACKET_RX_RING, rx_frames), (PACKET_TX_RING, tx_frames)):
                request = _REQ.pack(BLOCK_SIZE, frames // per_block, FRAME_SIZE, frames)
                s.setsockopt(SOL_PACKET, option, request)
            mm = mmap.mmap(s.fileno(), (rx_frames + tx_frames) * FRAME_SIZE)
            s.bind((ifname, ETH_P_ALL))
            ifindex = socket.if_nametoindex(ifname)
            s.setsockopt(
                SOL_PACKET,
                PACKET_ADD_MEMBERSHIP,
                _MREQ.pack(ifindex, PACKET_MR_PROMISC, 0, b""),
            )
            s.setblocking(False)
        except OSError as exc:
            if mm is not None:
                mm.close()
            sock.close()
            raise DeviceError(f"interface {ifname}: cannot set up a packet ring: {exc}") from exc
        self._attach(ifname, ifindex, sock, mm, rx_frames, tx_frames)

    def _attach(
        self,
        ifname: str,
        ifindex: int,
        sock: socket.socket,
        mm: mmap.mmap,
        rx_frames: int,
        tx_frames: int,
    ) -> None:
        self.ifname = ifname
        self.ifindex = ifindex
        self._sock = sock
        self._mm = mm
        self.rx_frames = 0
        self.rx_truncated = 0
        self.rx_copy_refused = 0
        self._gso = GsoCounts()
        self.rx_dropped = 0
        self.tx_dropped = 0
        self.tx_failed_flushes = 0
        self._rx_slots = rx_frames
        self._rx_head = 0
        self._tx_base = rx_frames * FRAME_SIZE
        self._tx_slots = tx_frames
        self._tx_head = 0
        self._tx_pending = 0

    @classmethod
    def over(cls, sock: socket.socket, mm: mmap.mmap, rx_frames: int, tx_frames: int) -> PacketRing:
        """A ring over a socket and a memory area laid out as the kernel's rings (for
        tests without root: a datagram socket pair stands for the receive queue)."""
        ring = cls.__new__(cls)
        ring._attach("test", 0, sock, mm, rx_frames, tx_frames)
        return ring

    @property
    def mac(self) -> bytes:
        """The interface's MAC address."""
        return bytes(self._sock.getsockname()[4])

    def set_qdisc_bypass(self, bypass: bool) -> None:
        """Whether frames sent here skip the interface's qdisc (the default: yes; no for
        a port whose inbound cap a qdisc shapes, vswitch.qdisc, and for an uplink that
        schedules reservations, vswitch.htb). Frames a qdisc holds count against the
        socket's send buffer: not bypassing, the buffer covers every slot of the ring,
        else one full class's queue (the default's) would block the sends of another's
        with EAGAIN."""
        self._sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, int(bypass))
        if not bypass:
            wanted = self._tx_slots * FRAME_SIZE * SEND_BUFFER_PER_SLOT
            if self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < wanted:
                self._sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, wanted)

    def fileno(self) -> int:
        return self._sock.fileno()

    @property
    def mtu(self) -> int:
        """The interface's MTU (asked each time: it may change)."""
        request = _IFREQ.pack(self.ifname.encode(), 0)
        return int(_IFREQ.unpack(fcntl.ioctl(self._sock, SIOCGIFMTU, request))[1])

    # ------------------------------------------------------------ receiving

    def recv_batch(self, max_frames: int = 256) -> list[bytes]:
        """Up to ``max_frames`` received frames (802.1Q tags restored); [] when none wait.

        An unfinished checksum is finished; a GSO frame (whole in its slot, or larger,
        taken whole from the receive queue) comes back as its segments (see the module
        docstring); ``max_frames`` counts slots.
        """
        mm = self._mm
        head = self._rx_head
        slots = self._rx_slots
        unpack = _RX_HEADER.unpack_from
        frames: list[bytes] = []
        append = frames.append
        taken = 0
        for taken in range(max_frames):  # noqa: B007 (read after the loop: the slots taken)
            base = head * FRAME_SIZE
            if not mm[base] & TP_STATUS_USER:
                break
            status, length, snaplen, mac = unpack(mm, base)
            start = base + mac
            if snaplen != length:
                self._take_copy(status, _tag(mm, base, status), frames)
            elif status & _SPECIAL:
                frame = (
                    _with_tag(mm, base, status, start, length)
                    if status & TP_STATUS_VLAN_VALID
                    else mm[start : start + length]
                )
                if status & _PARTIAL and mm[start - _GSO_TYPE_BACK] != GSO_NONE:
                    self._gso.cut(mm[start - VNET_HEADER_LEN : start], frame, frames)
                else:
                    append(finish_checksum(frame) if status & _PARTIAL else frame)
            else:
                append(mm[start : start + length])
            mm[base : base + 4] = _ZERO  # the slot goes back to the kernel
            head += 1
            if head == slots:
                head = 0
        else:
            taken = max_frames
        self.rx_frames += taken
        self._rx_head = head
        return frames

    def _take_copy(self, status: int, tag: bytes, frames: list[bytes]) -> None:
        """The whole frame of a slot too small for it: the next one on the receive queue
        (the kernel queues them in slot order), segmented if it is a GSO frame."""
        if not status & TP_STATUS_COPY:
            self.rx_copy_refused += 1  # the receive buffer was full: no copy queued
            return
        try:
            data, _, flags, _ = self._sock.recvmsg(COPY_MAX, 0, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            self.rx_truncated += 1  # the copy is gone (never seen here)
            return
        except OSError:
            self.rx_truncated += 1  # the kernel could not describe it (virtio_net_hdr)
            return
        if flags & socket.MSG_TRUNC or len(data) < VNET_HEADER_LEN:
            self.rx_truncated += 1
            return
        frame = data[VNET_HEADER_LEN:]
        if status & TP_STATUS_VLAN_VALID:
            frame = frame[:ETHERTYPE_AT] + tag + frame[ETHERTYPE_AT:]
        # a GSO frame, or one larger than a slot that is not (an MTU above the slot's)
        take(data[:VNET_HEADER_LEN], frame, bool(status & _PARTIAL), self._gso, frames)

    def receive_counters(self) -> dict[str, int]:
        """This ring's counters (``RECEIVE_COUNTERS``), the kernel's ring-full drops
        read now (``update_drops``)."""
        dropped = self.update_drops()
        counts = {name: getattr(self, name) for name in ("rx_frames", *RING_COUNTERS)}
        counts.update(
            rx_dropped_ring=dropped,
            tx_dropped_ring=self.tx_dropped,
            tx_failed_flushes=self.tx_failed_flushes,
        )
        return counts

    def update_drops(self) -> int:
        """Add the frames the kernel dropped because the receive ring was full since the
        last call to ``rx_dropped``; returns the new total."""
        try:
            raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS.size)
        except OSError:
            return self.rx_dropped
        self.rx_dropped += _STATS.unpack(raw)[1]
        return self.rx_dropped

    # ------------------------------------------------------------ sending

    def queue(self, frame: bytes) -> bool:
        """Write ``frame`` into the transmit ring (sent at the next ``flush``); False
        (and counted in ``tx_dropped``) when the ring is full or the frame too big."""
        n = len(frame)
        head = self._tx_head
        base = self._tx_base + head * FRAME_SIZE
        mm = self._mm
        if n > MAX_FRAME or mm[base] != TP_STATUS_AVAILABLE:
            if n <= MAX_FRAME and self._tx_pending:
                self.flush()  # the ring is full of our own unsent frames: push them out
            if n > MAX_FRAME or mm[base] != TP_STATUS_AVAILABLE:
                self.tx_dropped += 1
                return False
        start = base + TX_FRAME_AT  # the vnet header before it stays all zero
        mm[start : start + n] = frame
        _TX_HEADER.pack_into(mm, base, TP_STATUS_SEND_REQUEST, n + VNET_HEADER_LEN)
        head += 1
        self._tx_head = 0 if head == self._tx_slots else head
        self._tx_pending += 1
        return True

    def queue_many(self, frames: Iterable[bytes]) -> None:
        """``queue`` every frame: the hot path, one call per batch."""
        mm = self._mm
        pack = _TX_HEADER.pack_into
        tx_base = self._tx_base
        slots = self._tx_slots
        head = self._tx_head
        pending = 0
        for frame in frames:
            n = len(frame)
            base = tx_base + head * FRAME_SIZE
            if n > MAX_FRAME or mm[base] != TP_STATUS_AVAILABLE:
                self._tx_head = head
                self._tx_pending += pending
                pending = 0
                self.queue(frame)  # flush and retry, or count the drop
                head = self._tx_head
                continue
            start = base + TX_FRAME_AT
            mm[start : start + n] = frame
            pack(mm, base, TP_STATUS_SEND_REQUEST, n + VNET_HEADER_LEN)
            head += 1
            if head == slots:
                head = 0
            pending += 1
        self._tx_head = head
        self._tx_pending += pending

    def flush(self, priority: int = 0) -> None:
        """Hand every queued frame to the kernel (one system call); a ``priority`` is
        their ``skb->priority`` (``SO_PRIORITY`` as a control message: an htb class of
        the interface, vswitch.htb), else the socket's (0).

        A frame the interface's qdisc drops (a full queue, when the socket does not
        bypass it) stops the kernel's walk of the ring there with ENOBUFS: it is counted
        in ``tx_dropped`` and the walk goes on past it, so the rest leave now, with this
        priority, not with a later flush's."""
        for _ in range(self._tx_pending):
            try:
                if priority:
                    self._sock.sendmsg(_EMPTY, [_priority_message(priority)], socket.MSG_DONTWAIT)
                else:
                    self._sock.send(b"", socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return  # the slots stay marked: the next flush sends them
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.tx_dropped += 1
                    continue
                self.tx_failed_flushes += 1  # e.g. ENETDOWN: the slots stay for the next flush
                return
            self._tx_pending = 0
            return

    def send(self, frame: bytes) -> bool:
        """``queue`` and ``flush`` one frame."""
        ok = self.queue(frame)
        self.flush()
        return ok

    def close(self) -> None:
        try:
            self._mm.close()
        finally:
            self._sock.close()

    def __enter__(self) -> PacketRing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
