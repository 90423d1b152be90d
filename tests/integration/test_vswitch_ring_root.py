"""Packet rings on a veth pair between two namespaces: frames as on the wire, batched;
GSO super-frames of a TCP transfer with TSO on taken whole and segmented."""

from __future__ import annotations

import os
import select
import subprocess
from collections.abc import Iterator

import pytest
from tso_transfer import ADDRESSES, carried, transfer

from openhnv.lab import netns
from openhnv.testing.namespaces import End, NamespacePair, join
from openhnv.vswitch.errors import DeviceError
from openhnv.vswitch.ring import MAX_FRAME, TX_FRAMES, PacketRing

pytestmark = pytest.mark.root

DST = bytes.fromhex("02000000000b")
SRC = bytes.fromhex("02000000000a")


@pytest.fixture
def rings(netns_pair: NamespacePair) -> Iterator[tuple[PacketRing, PacketRing]]:
    """A ring on ``p0`` in namespace ``a`` and one on ``p1`` in ``b``, joined by a veth."""
    a, b = netns_pair
    join(End(a, "p0", mac="02:00:00:00:00:0a"), End(b, "p1", mac="02:00:00:00:00:0b"))
    opened: list[PacketRing] = []
    try:
        opened.append(netns.run_in(a, PacketRing, "p0"))
        opened.append(netns.run_in(b, PacketRing, "p1"))
        yield opened[0], opened[1]
    finally:
        for ring in opened:
            ring.close()


def receive(ring: PacketRing, count: int) -> list[bytes]:
    """Frames of our test EtherType (0x88b5) until ``count`` arrived."""
    got: list[bytes] = []
    poller = select.poll()
    poller.register(ring.fileno(), select.POLLIN)
    while len(got) < count:
        assert poller.poll(5000), f"only {len(got)} of {count} frames arrived"
        got += [f for f in ring.recv_batch(4096) if b"\x88\xb5" in f[12:18]]
    return got


def test_frames_arrive_whole_and_in_order_with_their_vlan_tag(
    rings: tuple[PacketRing, PacketRing],
) -> None:
    a, b = rings
    assert a.mac == SRC
    assert b.mac == DST
    plain = DST + SRC + b"\x88\xb5" + b"plain".ljust(46, b".")
    tagged = DST + SRC + b"\x81\x00\x60\x14" + b"\x88\xb5" + b"tagged".ljust(46, b".")
    big = DST + SRC + b"\x88\xb5" + b"big".ljust(1600, b".")
    assert a.queue(plain)
    assert a.queue(tagged)
    assert a.queue(big)
    a.flush()
    assert receive(b, 3) == [plain, tagged, big]  # PCP 3, VID 20 restored
    assert [f for f in a.recv_batch() if b"\x88\xb5" in f[12:18]] == []  # not our own


def test_more_frames_than_the_ring_holds_go_out_in_order(
    rings: tuple[PacketRing, PacketRing],
) -> None:
    a, b = rings
    count = TX_FRAMES + 300
    frames = [DST + SRC + b"\x88\xb5" + i.to_bytes(4, "big").ljust(46, b".") for i in range(count)]
    got: list[bytes] = []
    for start in range(0, count, 200):
        for frame in frames[start : start + 200]:
            assert a.queue(frame)
        a.flush()
        got += receive(b, min(200, count - start))
    assert got == frames
    assert a.tx_dropped == 0
    assert b.rx_truncated == 0


def test_frames_a_failed_flush_left_in_the_ring_go_out_with_the_next_one(
    rings: tuple[PacketRing, PacketRing], netns_pair: NamespacePair
) -> None:
    a, b = rings
    owner = netns_pair.a
    frame = DST + SRC + b"\x88\xb5" + b"later".ljust(46, b".")
    subprocess.run(["ip", "-n", owner, "link", "set", "p0", "down"], check=True)
    assert a.queue(frame)
    a.flush()  # the interface is down: the kernel refuses, the slot stays marked
    assert a.tx_failed_flushes == 1
    subprocess.run(["ip", "-n", owner, "link", "set", "p0", "up"], check=True)
    for _ in range(3):  # the socket reports the past ENETDOWN once more, then sends
        a.flush()
    assert receive(b, 1) == [frame]
    assert a.tx_dropped == 0


def test_a_frame_bigger_than_a_slot_is_refused_and_counted(
    rings: tuple[PacketRing, PacketRing],
) -> None:
    a, _ = rings
    assert not a.queue(DST + SRC + b"\x88\xb5" + bytes(MAX_FRAME))
    assert a.tx_dropped == 1


def test_a_missing_interface_is_named() -> None:
    with pytest.raises(DeviceError, match="hnv-nosuch0"):
        PacketRing("hnv-nosuch0")


def test_the_gso_frames_of_a_tso_transfer_come_out_as_segments_that_rebuild_the_data(
    netns_pair: NamespacePair,
) -> None:
    """TCP between the namespaces (TSO on: the sender's kernel hands the veth 64 KB
    frames); a ring on the receiving end sees every frame, the large ones taken whole
    (``TP_STATUS_COPY``) and cut at the sender's MSS, checksums finished."""
    a, b = netns_pair
    join(End(a, "p0", address=ADDRESSES[0]), End(b, "p1", address=ADDRESSES[1]))
    data = os.urandom(2 << 20)
    with netns.run_in(b, PacketRing, "p1") as ring:
        assert carried(transfer(a, b, data, lambda: ring.recv_batch(4096))) == data
        assert ring.rx_gso_frames > 0
        assert ring.rx_gso_segments > ring.rx_gso_frames
        assert (ring.rx_truncated, ring.rx_copy_refused, ring.rx_gso_unsupported) == (0, 0, 0)
