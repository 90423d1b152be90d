"""AF_PACKET sockets on a veth pair between two namespaces: frames as on the wire."""

from __future__ import annotations

import selectors
from collections.abc import Iterator

import pytest

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
