"""A VM's own UDP tunnel inside the overlay (a tenant running VXLAN between its VMs).

A frame the VM encapsulated itself with checksum offload carries the kernel's
"already encapsulated" state, so the fast path's encapsulation falls back to plain
room for it; a GSO frame of that kind cannot be segmented right afterwards and is
dropped under ``err_nested_gso``, never under a silent error. Namespaces ``hnv-fp…``
from ``openhnv.testing.fastpath_net``, removed afterwards.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from openhnv.lab import netns
from openhnv.testing.fastpath_net import FastpathNet, SlowPath
from openhnv.testing.polling import eventually

pytestmark = [pytest.mark.root, pytest.mark.fastpath]

TENANT_VNI = "42"
TENANT_PORT = 8472
TENANT_SOURCE_PORT = 50000  # the tenant's VXLAN source port range is this one port
INNER = {"v1": "172.16.0.1", "v2": "172.16.0.2"}
LISTEN_PORT = 5555


@pytest.fixture
def net() -> Iterator[FastpathNet]:
    with FastpathNet("ns", vms=(("v1", "h1"), ("v2", "h2"))) as built:
        built.load("h1")
        built.load("h2")
        SlowPath(built, "h1")
        SlowPath(built, "h2")
        for vm, other in (("v1", "v2"), ("v2", "v1")):
            ns, a, b = built.vms[vm].namespace, built.vms[vm], built.vms[other]
            netns.exec_in(ns, ["ip", "link", "add", "vxn", "type", "vxlan", "id", TENANT_VNI,
                               "local", a.ip, "remote", b.ip, "dstport", str(TENANT_PORT),
                               "srcport", str(TENANT_SOURCE_PORT), str(TENANT_SOURCE_PORT + 1),
                               "dev", "eth0"])  # fmt: skip
            netns.exec_in(ns, ["ip", "addr", "add", f"{INNER[vm]}/24", "dev", "vxn"])
            netns.exec_in(ns, ["ip", "link", "set", "vxn", "up"])
            frame = built.udp(vm, other, TENANT_SOURCE_PORT, TENANT_PORT)
            built.install_flow(vm, other, frame, 4321)
        yield built


def _gso(net: FastpathNet, on: bool) -> None:
    """The VMs' segmentation offloads on or off (checksum offload stays on)."""
    for vm in ("v1", "v2"):
        for ifname in ("eth0", "vxn"):
            netns.exec_in(net.vms[vm].namespace, ["ethtool", "-K", ifname, "tso",
                                                  "on" if on else "off", "gso",
                                                  "on" if on else "off"])  # fmt: skip


def _listen() -> socket.socket:
    s = socket.socket()
    s.bind((INNER["v2"], LISTEN_PORT))
    s.listen(1)
    s.settimeout(10)
    return s


def _send(data: bytes) -> socket.socket:
    s = socket.create_connection((INNER["v2"], LISTEN_PORT), timeout=10)
    s.settimeout(5)
    with contextlib.suppress(TimeoutError, OSError):
        s.sendall(data)
    return s


def _transfer(net: FastpathNet, size: int) -> bytes:
    """Send ``size`` bytes over TCP through the tenant's tunnel; what arrived in 5 s."""
    server = netns.run_in(net.vms["v2"].namespace, _listen)
    received = bytearray()

    def accept() -> None:
        conn, _ = server.accept()
        conn.settimeout(5)
        with contextlib.suppress(TimeoutError, OSError):
            while len(received) < size and (chunk := conn.recv(65536)):
                received.extend(chunk)
        conn.close()

    reader = threading.Thread(target=accept)
    reader.start()
    try:
        client = netns.run_in(net.vms["v1"].namespace, _send, bytes(size))
        reader.join(15)
        client.close()
    finally:
        server.close()
    return bytes(received)


def test_the_tenants_tunnel_crosses_the_fast_path_without_gso(net: FastpathNet) -> None:
    _gso(net, on=False)
    assert len(_transfer(net, 4 * 1024 * 1024)) == 4 * 1024 * 1024
    h1 = net.fast_paths["h1"].counters.read()
    assert h1["hit_encap"] > 1000
    assert h1["err_helper"] == h1["err_nested_gso"] == 0


def _send_nowait(data: bytes) -> socket.socket:
    """Connect and queue what the send buffer takes of ``data``; the stack sends it on."""
    s = socket.create_connection((INNER["v2"], LISTEN_PORT), timeout=10)
    s.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        s.send(data)
    return s


def test_a_gso_frame_of_the_tenants_tunnel_is_dropped_and_counted(net: FastpathNet) -> None:
    """The first flight after the handshake is a GSO frame: the wait ends at its drop (the
    stalled transfer itself proves nothing more, so the test no longer waits it out)."""
    _gso(net, on=True)
    fp = net.fast_paths["h1"]
    server = netns.run_in(net.vms["v2"].namespace, _listen)
    try:
        with netns.run_in(net.vms["v1"].namespace, _send_nowait, bytes(1024 * 1024)):
            eventually(lambda: fp.counters.read()["err_nested_gso"] > 0, "a nested GSO drop")
    finally:
        server.close()
    assert fp.counters.read()["err_helper"] == 0
