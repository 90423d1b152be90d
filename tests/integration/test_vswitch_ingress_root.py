"""The tc ingress drop: the kernel stops answering on a link, AF_PACKET still sees all."""

from __future__ import annotations

import ipaddress
import os
import secrets
import select
from collections.abc import Iterator

import pytest

from openhnv.lab import netns
from openhnv.vswitch.afpacket import AfPacketSocket
from openhnv.vswitch.errors import DeviceError
from openhnv.vswitch.ingress import hide_from_kernel, show_to_kernel

pytestmark = pytest.mark.root


@pytest.fixture
def pair() -> Iterator[tuple[str, str]]:
    """Namespaces a (10.9.0.1 on p0) and b (10.9.0.2 on up0), joined by a veth."""
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    prefix = f"hnv-lxi{os.getpid() % 1000}{secrets.token_hex(2)}-"
    a, b = f"{prefix}a", f"{prefix}b"
    try:
        netns.create_namespace(a)
        netns.create_namespace(b)
        netns.add_veth(a, "p0", b, "up0", 1700)
        netns.set_up(a, "p0")
        netns.set_up(b, "up0")
        netns.add_address(a, "p0", ipaddress.IPv4Interface("10.9.0.1/24"))
        netns.add_address(b, "up0", ipaddress.IPv4Interface("10.9.0.2/24"))
        yield a, b
    finally:
        for name in netns.list_namespaces(prefix):
            netns.delete_namespace(name)


def ping(namespace: str) -> int:
    argv = ["ping", "-c", "1", "-W", "1", "10.9.0.2"]
    return netns.exec_in(namespace, argv, check=False).returncode


def test_hidden_frames_still_reach_packet_sockets_and_show_restores(
    pair: tuple[str, str],
) -> None:
    a, b = pair
    assert ping(a) == 0
    sock = netns.run_in(b, AfPacketSocket, "up0")
    try:
        netns.run_in(b, hide_from_kernel, "up0")
        netns.run_in(b, hide_from_kernel, "up0")  # twice: still one filter, no error
        sock.recv_batch(1024)
        assert ping(a) != 0
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        assert poller.poll(1000)
        seen = sock.recv_batch(1024)
        assert any(f[12:14] == b"\x08\x00" and f[30:34] == bytes([10, 9, 0, 2]) for f in seen)
        netns.run_in(b, show_to_kernel, "up0")
        netns.run_in(b, show_to_kernel, "up0")  # already gone: no error
        netns.exec_in(a, ["ip", "neigh", "flush", "all"])
        assert ping(a) == 0
    finally:
        sock.close()


def test_a_missing_interface_is_named(pair: tuple[str, str]) -> None:
    _, b = pair
    with pytest.raises(DeviceError, match="nosuch0"):
        netns.run_in(b, hide_from_kernel, "nosuch0")
    netns.run_in(b, show_to_kernel, "nosuch0")  # nothing to remove: no error
