"""AF_PACKET sockets on a veth pair between two namespaces: frames as on the wire; with
``segment_gso``, the GSO frames of a TSO transfer as their segments, UDP GSO counted."""

from __future__ import annotations

import os
import selectors
import socket
from collections.abc import Iterator

import pytest
from tso_transfer import ADDRESSES, SERVER, carried, transfer

from openhnv.lab import netns
from openhnv.testing.namespaces import End, NamespacePair, join
from openhnv.vswitch.afpacket import AfPacketSocket

pytestmark = pytest.mark.root

DST = bytes.fromhex("02000000000b")
SRC = bytes.fromhex("02000000000a")


@pytest.fixture
def sockets(netns_pair: NamespacePair) -> Iterator[tuple[AfPacketSocket, AfPacketSocket]]:
    """A socket on ``p0`` in namespace ``a`` and one on ``p1`` in ``b``, joined by a veth."""
    a, b = netns_pair
    join(End(a, "p0", mac="02:00:00:00:00:0a"), End(b, "p1", mac="02:00:00:00:00:0b"))
    opened: list[AfPacketSocket] = []
    try:
        opened.append(netns.run_in(a, AfPacketSocket, "p0"))
        opened.append(netns.run_in(b, AfPacketSocket, "p1"))
        yield opened[0], opened[1]
    finally:
        for sock in opened:
            sock.close()


def receive(sock: AfPacketSocket, count: int) -> list[bytes]:
    """Frames of our test EtherType (0x88b5, local experimental) until ``count`` arrive."""
    got: list[bytes] = []
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        while len(got) < count:
            assert selector.select(5.0), "nothing arrived"
            got += [f for f in sock.recv_batch() if b"\x88\xb5" in f[12:18]]
    return got


def test_frames_arrive_whole_with_their_vlan_tag(
    sockets: tuple[AfPacketSocket, AfPacketSocket],
) -> None:
    a, b = sockets
    assert a.mac == SRC
    assert b.mac == DST
    plain = DST + SRC + b"\x88\xb5" + b"plain".ljust(46, b".")
    tagged = DST + SRC + b"\x81\x00\x60\x14" + b"\x88\xb5" + b"tagged".ljust(46, b".")
    assert a.send(plain) == len(plain)
    assert a.send(tagged) == len(tagged)
    assert receive(b, 2) == [plain, tagged]  # PCP 3, VID 20 restored from PACKET_AUXDATA


def test_own_transmissions_are_not_received(
    sockets: tuple[AfPacketSocket, AfPacketSocket],
) -> None:
    a, b = sockets
    frame = DST + SRC + b"\x88\xb5" + b"once".ljust(46, b".")
    a.send(frame)
    assert receive(b, 1) == [frame]
    assert [f for f in a.recv_batch() if b"\x88\xb5" in f[12:18]] == []
    b.send(SRC + DST + b"\x88\xb5" + b"back".ljust(46, b"."))
    assert [f[14:18] for f in receive(a, 1)] == [b"back"]


UDP_SEGMENT = 103  # SOL_UDP option: the socket sends UDP GSO frames of this segment size


def test_segmenting_sockets_carry_plain_frames_both_ways(netns_pair: NamespacePair) -> None:
    a, b = netns_pair
    join(End(a, "p0", mac="02:00:00:00:00:0a"), End(b, "p1", mac="02:00:00:00:00:0b"))
    with (
        netns.run_in(a, AfPacketSocket, "p0", segment_gso=True) as left,
        netns.run_in(b, AfPacketSocket, "p1", segment_gso=True) as right,
    ):
        tagged = DST + SRC + b"\x81\x00\x60\x14" + b"\x88\xb5" + b"tagged".ljust(46, b".")
        assert left.send(tagged) == len(tagged)  # after an all-zero virtio_net_hdr
        assert receive(right, 1) == [tagged]
        back = SRC + DST + b"\x88\xb5" + b"back".ljust(46, b".")
        assert right.send(back) == len(back)
        assert receive(left, 1) == [back]
        assert right.send(back + bytes(2000)) == 0  # over the MTU: counted
        assert right.tx_dropped == 1


def test_a_segmenting_socket_takes_the_gso_frames_of_a_tso_transfer_as_segments(
    netns_pair: NamespacePair,
) -> None:
    a, b = netns_pair
    join(End(a, "p0", address=ADDRESSES[0]), End(b, "p1", address=ADDRESSES[1]))
    data = os.urandom(2 << 20)
    with netns.run_in(b, AfPacketSocket, "p1", segment_gso=True) as sock:
        assert carried(transfer(a, b, data, lambda: sock.recv_batch(4096))) == data
        assert sock.rx_gso_frames > 0
        assert sock.rx_gso_segments > sock.rx_gso_frames
        assert (sock.rx_truncated, sock.rx_gso_unsupported) == (0, 0)


def test_a_udp_gso_frame_is_dropped_and_counted(netns_pair: NamespacePair) -> None:
    a, b = netns_pair
    join(End(a, "p0", address=ADDRESSES[0]), End(b, "p1", address=ADDRESSES[1]))
    with netns.run_in(b, AfPacketSocket, "p1", segment_gso=True) as sock:
        sender = netns.run_in(a, socket.socket, socket.AF_INET, socket.SOCK_DGRAM)
        with sender:
            sender.sendto(b"resolve", SERVER)  # the neighbour first: one plain datagram
            sender.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 1000)
            sender.sendto(bytes(8000), SERVER)  # one UDP GSO frame of 8 segments
        frames: list[bytes] = []
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ)
            while sock.rx_gso_unsupported == 0 and selector.select(5.0):
                frames += sock.recv_batch()
        assert sock.rx_gso_unsupported == 1
        assert all(len(f) < 1000 for f in frames)  # nothing of it went on whole
