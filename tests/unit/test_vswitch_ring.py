"""The packet ring's receive side without root: slots written as ``tpacket_rcv`` writes
them (TPACKET_V2 header, virtio_net_hdr before the frame), the whole copies of frames
larger than a slot on a datagram socket standing for the receive queue. Which frames
come out, in which order, and what is counted."""

from __future__ import annotations

import mmap
import socket
import struct
from collections.abc import Iterator

import pytest
from gso_frames import A4, B4, MAC_A, MAC_B, gso_frame
from scapy.layers.inet import TCP
from scapy.layers.l2 import Dot1Q, Ether

from openhnv.packet.frames import udp_frame
from openhnv.packet.segment import GSO_NONE, GSO_TCPV4, GSO_UDP_L4
from openhnv.vswitch.afpacket import TP_STATUS_VLAN_VALID
from openhnv.vswitch.ring import (
    FRAME_SIZE,
    RECEIVE_COUNTERS,
    RX_FRAME_AT,
    TP_STATUS_COPY,
    TP_STATUS_CSUMNOTREADY,
    TP_STATUS_GSO_TCP,
    TP_STATUS_USER,
    PacketRing,
)
from openhnv.vswitch.vnet import VNET_HEADER

RX_SLOTS = TX_SLOTS = 32
MSS = 1448
PLAIN = MAC_B + MAC_A + b"\x88\xb5" + b"plain".ljust(46, b".")


class Kernel:
    """The kernel's side: fills receive slots in order and queues whole copies."""

    def __init__(self, mm: mmap.mmap, queue: socket.socket) -> None:
        self.mm = mm
        self.queue = queue
        self.slot = 0

    def deliver(
        self,
        frame: bytes,
        *,
        gso: tuple[int, int] = (GSO_NONE, 0),
        copy: bool = True,
        vlan_tci: int | None = None,
    ) -> None:
        """``frame`` into the next slot (its first bytes when it is larger), a whole copy
        on the queue if ``copy``; ``vlan_tci``: the tag was taken off into the header."""
        gso_type, gso_size = gso
        base = self.slot * FRAME_SIZE
        self.slot += 1
        shown = frame[: FRAME_SIZE - RX_FRAME_AT]
        status = TP_STATUS_USER
        if gso_type != GSO_NONE:
            status |= TP_STATUS_CSUMNOTREADY | (TP_STATUS_GSO_TCP if gso_type == GSO_TCPV4 else 0)
        vnet = VNET_HEADER.pack(1 if gso_type else 0, gso_type, 66, gso_size, 34, 16)
        if len(shown) < len(frame) and copy:
            status |= TP_STATUS_COPY
            self.queue.send(vnet + frame)
        if vlan_tci is not None:
            status |= TP_STATUS_VLAN_VALID
            struct.pack_into("=HH", self.mm, base + 24, vlan_tci, 0x8100)
        struct.pack_into("=IIH", self.mm, base + 4, len(frame), len(shown), RX_FRAME_AT)
        self.mm[base + RX_FRAME_AT - len(vnet) : base + RX_FRAME_AT] = vnet
        self.mm[base + RX_FRAME_AT : base + RX_FRAME_AT + len(shown)] = shown
        struct.pack_into("=I", self.mm, base, status)  # last: the slot is ours now


@pytest.fixture
def ring_and_kernel() -> Iterator[tuple[PacketRing, Kernel]]:
    ours, kernels = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    kernels.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    mm = mmap.mmap(-1, (RX_SLOTS + TX_SLOTS) * FRAME_SIZE)
    ring = PacketRing.over(ours, mm, RX_SLOTS, TX_SLOTS)
    try:
        yield ring, Kernel(mm, kernels)
    finally:
        ring.close()
        kernels.close()


def payloads(frames: list[bytes]) -> bytes:
    return b"".join(bytes(Ether(f)[TCP].payload) for f in frames if Ether(f).haslayer(TCP))


def test_a_gso_frame_larger_than_a_slot_comes_out_as_its_segments_in_its_place(
    ring_and_kernel: tuple[PacketRing, Kernel],
) -> None:
    ring, kernel = ring_and_kernel
    payload = bytes(range(256)) * 200  # 51200 bytes: 36 segments of at most 1448
    kernel.deliver(PLAIN)
    kernel.deliver(gso_frame(payload), gso=(GSO_TCPV4, MSS))
    kernel.deliver(PLAIN[:-1] + b"!")
    frames = ring.recv_batch()
    assert frames[0] == PLAIN
    assert frames[-1] == PLAIN[:-1] + b"!"
    segments = frames[1:-1]
    assert len(segments) == 36
    assert payloads(segments) == payload
    assert max(len(s) for s in segments) == 14 + 20 + 32 + MSS
    assert (ring.rx_gso_frames, ring.rx_gso_segments, ring.rx_truncated) == (1, 36, 0)


def test_a_small_gso_frame_whole_in_its_slot_is_segmented_too(
    ring_and_kernel: tuple[PacketRing, Kernel],
) -> None:
    ring, kernel = ring_and_kernel
    kernel.deliver(gso_frame(bytes(1800)), gso=(GSO_TCPV4, 1000))
    frames = ring.recv_batch()
    assert [len(bytes(Ether(f)[TCP].payload)) for f in frames] == [1000, 800]
    assert ring.rx_gso_frames == 1


def test_the_vlan_tag_the_kernel_took_off_comes_back_on_every_segment(
    ring_and_kernel: tuple[PacketRing, Kernel],
) -> None:
    ring, kernel = ring_and_kernel
    payload = bytes(5000)
    kernel.deliver(gso_frame(payload), gso=(GSO_TCPV4, MSS), vlan_tci=0x6014)
    frames = ring.recv_batch()
    assert len(frames) == 4
    assert all(Ether(f)[Dot1Q].vlan == 20 and Ether(f)[Dot1Q].prio == 3 for f in frames)
    assert payloads(frames) == payload


def test_a_copy_the_kernel_refused_is_counted_and_the_frames_after_it_come(
    ring_and_kernel: tuple[PacketRing, Kernel],
) -> None:
    ring, kernel = ring_and_kernel
    kernel.deliver(gso_frame(bytes(20000)), gso=(GSO_TCPV4, MSS), copy=False)
    kernel.deliver(gso_frame(bytes(3000), seq=21000), gso=(GSO_TCPV4, MSS))
    kernel.deliver(PLAIN)
    frames = ring.recv_batch()
    assert [Ether(f)[TCP].seq for f in frames[:-1]] == [21000, 22448, 23896]
    assert frames[-1] == PLAIN
    assert (ring.rx_copy_refused, ring.rx_gso_frames, ring.rx_truncated) == (1, 1, 0)


def test_a_copy_slot_whose_copy_is_missing_counts_as_truncated(
    ring_and_kernel: tuple[PacketRing, Kernel],
) -> None:
    ring, kernel = ring_and_kernel
    kernel.deliver(gso_frame(bytes(20000)), gso=(GSO_TCPV4, MSS))
    ring._sock.recv(1 << 17)  # the copy is gone before the switch reads it
    kernel.deliver(PLAIN)
    assert ring.recv_batch() == [PLAIN]
    assert (ring.rx_truncated, ring.rx_gso_frames) == (1, 0)


def test_udp_gso_is_dropped_and_counted_as_unsupported(
    ring_and_kernel: tuple[PacketRing, Kernel],
) -> None:
    ring, kernel = ring_and_kernel
    big = udp_frame(src_mac=MAC_A, dst_mac=MAC_B, src_ip=A4, dst_ip=B4, src_port=1,
                    dst_port=2, payload=bytes(9000))  # fmt: skip
    kernel.deliver(big, gso=(GSO_UDP_L4, 1400))
    kernel.deliver(PLAIN)
    assert ring.recv_batch() == [PLAIN]
    assert (ring.rx_gso_unsupported, ring.rx_gso_frames, ring.rx_truncated) == (1, 0, 0)


def test_a_frame_larger_than_a_slot_that_is_not_gso_comes_whole(
    ring_and_kernel: tuple[PacketRing, Kernel],
) -> None:
    ring, kernel = ring_and_kernel
    jumbo = MAC_B + MAC_A + b"\x88\xb5" + bytes(range(256)) * 30  # 7694 bytes, no GSO
    kernel.deliver(jumbo)
    assert ring.recv_batch() == [jumbo]
    assert (ring.rx_gso_frames, ring.rx_truncated, ring.rx_copy_refused) == (0, 0, 0)


def test_every_slot_read_counts_once_in_rx_frames_a_gso_frame_too(
    ring_and_kernel: tuple[PacketRing, Kernel],
) -> None:
    ring, kernel = ring_and_kernel
    kernel.deliver(PLAIN)
    kernel.deliver(gso_frame(bytes(20000)), gso=(GSO_TCPV4, MSS))
    kernel.deliver(PLAIN)
    assert len(ring.recv_batch(max_frames=2)) == 1 + 14  # the second PLAIN waits
    assert ring.rx_frames == 2
    assert ring.recv_batch() == [PLAIN]
    assert ring.recv_batch() == []
    assert ring.rx_frames == 3


def test_receive_counters_name_what_the_ring_counted(
    ring_and_kernel: tuple[PacketRing, Kernel],
) -> None:
    ring, kernel = ring_and_kernel
    kernel.deliver(gso_frame(bytes(3000)), gso=(GSO_TCPV4, MSS))
    big = udp_frame(src_mac=MAC_A, dst_mac=MAC_B, src_ip=A4, dst_ip=B4, src_port=1,
                    dst_port=2, payload=bytes(9000))  # fmt: skip
    kernel.deliver(big, gso=(GSO_UDP_L4, 1400))
    kernel.deliver(gso_frame(bytes(20000)), gso=(GSO_TCPV4, MSS), copy=False)
    ring.recv_batch()
    assert ring.receive_counters() == {
        "rx_frames": 3,
        "rx_truncated": 0,
        "rx_copy_refused": 1,
        "rx_gso_frames": 1,
        "rx_gso_segments": 3,
        "rx_gso_unsupported": 1,
        "rx_dropped_ring": 0,
        "tx_dropped_ring": 0,
        "tx_failed_flushes": 0,
    }
    assert tuple(ring.receive_counters()) == RECEIVE_COUNTERS
