"""The tc ingress drop: the kernel stops answering on a link, AF_PACKET still sees all."""

from __future__ import annotations

import select

import pytest

from openhnv.lab import netns, traffic
from openhnv.testing.namespaces import End, NamespacePair, join
from openhnv.vswitch.afpacket import AfPacketSocket
from openhnv.vswitch.errors import DeviceError
from openhnv.vswitch.ingress import hide_from_kernel, show_to_kernel

pytestmark = pytest.mark.root

B_ADDRESS = "10.9.0.2"


@pytest.fixture
def pair(netns_pair: NamespacePair) -> NamespacePair:
    """Namespaces a (10.9.0.1 on p0) and b (10.9.0.2 on up0), joined by a veth."""
    a, b = netns_pair
    join(End(a, "p0", address="10.9.0.1/24"), End(b, "up0", address=f"{B_ADDRESS}/24"))
    return netns_pair


def ping(namespace: str) -> bool:
    """Whether ``b`` answers one echo from ``namespace``."""
    return traffic.ping(namespace, B_ADDRESS, count=1, wait=1.0) is not None


def test_hidden_frames_still_reach_packet_sockets_and_show_restores(
    pair: NamespacePair,
) -> None:
    a, b = pair
    assert ping(a)
    sock = netns.run_in(b, AfPacketSocket, "up0")
    try:
        netns.run_in(b, hide_from_kernel, "up0")
        netns.run_in(b, hide_from_kernel, "up0")  # twice: still one filter, no error
        sock.recv_batch(1024)
        assert not ping(a)
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        assert poller.poll(1000)
        seen = sock.recv_batch(1024)
        assert any(f[12:14] == b"\x08\x00" and f[30:34] == bytes([10, 9, 0, 2]) for f in seen)
        netns.run_in(b, show_to_kernel, "up0")
        netns.run_in(b, show_to_kernel, "up0")  # already gone: no error
        netns.exec_in(a, ["ip", "neigh", "flush", "all"])
        assert ping(a)
    finally:
        sock.close()


def test_a_missing_interface_is_named(pair: NamespacePair) -> None:
    _, b = pair
    with pytest.raises(DeviceError, match="nosuch0"):
        netns.run_in(b, hide_from_kernel, "nosuch0")
    netns.run_in(b, show_to_kernel, "nosuch0")  # nothing to remove: no error
