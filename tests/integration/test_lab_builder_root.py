"""The figure-8 physical network in namespaces, with two userspace PA stacks on it.

Two hosts own their PAs only in userspace (``ProviderStack``); host2's PA subnet is
VLAN 20. They exchange VXLAN-looking UDP packets through the kernel router, resolving
the gateway with ARP, and the router pings a PA. VM namespaces reach nothing while no
switch runs, and ``clean`` removes everything, daemons included.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw

from openhnv.lab import builder, netns
from openhnv.lab.errors import LabError
from openhnv.lab.topology import Topology, load
from openhnv.vswitch.afpacket import AfPacketSocket
from openhnv.vswitch.uplink import ProviderStack, TunnelFrame, UplinkConfig, UplinkDriver

pytestmark = pytest.mark.root

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def unique_lab_name() -> str:
    """``t`` + 6 hex digits: namespaces become ``hnv-t<random>-...``."""
    return f"t{secrets.token_hex(3)}"


def _built(run_root: Path) -> Iterator[tuple[builder.Lab, Path]]:
    topology: Topology = dataclasses.replace(
        load(EXAMPLES / "figure8.yaml"), name=unique_lab_name()
    )
    try:
        lab = builder.build(topology, run_root=run_root)
        yield lab, run_root
    finally:
        builder.teardown(topology, run_root=run_root)


@pytest.fixture(scope="module")
def figure8(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[builder.Lab, Path]]:
    """The figure-8 fabric under a unique lab name, shared by the tests that only use it."""
    yield from _built(tmp_path_factory.mktemp("run"))


@pytest.fixture
def figure8_own(tmp_path: Path) -> Iterator[tuple[builder.Lab, Path]]:
    """A figure-8 fabric of the test's own, for a test that removes it."""
    yield from _built(tmp_path / "run")


DEADLINE_SECONDS = 10.0


def provider_addresses(topology: Topology, host: str) -> list[ipaddress.IPv4Address]:
    """The PAs of a host's uplinks, taken from its PA subnet's pool in host order (as the
    controller allocates them in a full lab: host1 192.168.1.10/.11, host2 .2.20/.21)."""
    subnet = topology.pa_subnet(topology.host(host).pa_subnet)
    offset = 0
    for other in topology.hosts:
        if other.name == host:
            return [subnet.ip_pool[0] + offset + k for k in range(other.uplinks)]
        if other.pa_subnet == subnet.name:
            offset += other.uplinks
    raise KeyError(host)


def start_host(lab: builder.Lab, host: str, received: list[TunnelFrame]) -> UplinkDriver:
    topology = lab.topology
    pa_subnet = topology.pa_subnet(topology.host(host).pa_subnet)
    namespace = lab.names.host(host)
    sockets = [
        netns.run_in(namespace, AfPacketSocket, lab.names.uplink(k))
        for k in range(topology.host(host).uplinks)
    ]
    addresses = provider_addresses(topology, host)
    configs = [
        UplinkConfig(
            interface=lab.names.uplink(k),
            mac=sock.mac,
            provider_address=ipaddress.IPv4Interface(f"{pa}/{pa_subnet.prefix.prefixlen}"),
            vlan=pa_subnet.vlan,
            default_gateway=pa_subnet.gateway,
        )
        for k, (sock, pa) in enumerate(zip(sockets, addresses, strict=True))
    ]
    driver = UplinkDriver(ProviderStack(configs), sockets, received.append)
    driver.announce()
    return driver


def pump(drivers: list[UplinkDriver], done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not done():
        assert time.monotonic() < deadline, "timed out waiting for the PA exchange"
        for driver in drivers:
            driver.poll(0.01)


def outer_udp(source: str, destination: str, sport: int, body: bytes) -> bytes:
    return bytes(IP(src=source, dst=destination, ttl=64) / UDP(sport=sport, dport=4789) / Raw(body))


def test_fabric_layout(figure8: tuple[builder.Lab, Path]) -> None:
    lab, _ = figure8
    names = lab.names
    assert set(netns.list_namespaces(names.prefix)) == {
        names.fabric,
        names.router,
        names.host("host1"),
        names.host("host2"),
        *(names.vm(vm.name) for vm in lab.topology.vms),
    }
    host1 = set(netns.link_names(names.host("host1")))
    assert host1 == {"lo", "up0", "up1", "vm-contoso-sql", "vm-fabrikam-sql"}
    # No PA in the kernel: the host namespace has no IPv4 address at all.
    addresses = netns.exec_in(names.host("host1"), ["ip", "-4", "-o", "addr"]).stdout
    assert "192.168." not in addresses
    mtu = netns.exec_in(names.host("host1"), ["cat", "/sys/class/net/up0/mtu"]).stdout
    assert int(mtu) >= 1660
    # The router is the only holder of PA-subnet addresses, and it forwards.
    router = netns.exec_in(names.router, ["ip", "-4", "-o", "addr"]).stdout
    assert "192.168.1.1/24" in router
    assert "192.168.2.1/24" in router
    forward = netns.exec_in(names.router, ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout
    assert forward.strip() == "1"
    assert "vlanport-pa2" in lab.pids


def test_two_pa_stacks_exchange_vxlan_through_the_router(figure8: tuple[builder.Lab, Path]) -> None:
    lab, _ = figure8
    at_host1: list[TunnelFrame] = []
    at_host2: list[TunnelFrame] = []
    host1 = start_host(lab, "host1", at_host1)
    host2 = start_host(lab, "host2", at_host2)
    try:
        vxlan = bytes.fromhex("0800000000138900") + b"inner ethernet frame"
        # host1 (untagged subnet) -> host2 (VLAN 20), off-subnet: ARP for the gateway.
        host1.send_ip(0, outer_udp("192.168.1.10", "192.168.2.20", 50001, vxlan))
        pump([host1, host2], lambda: bool(at_host2))
        [arrived] = at_host2
        assert arrived.encapsulation == "vxlan"
        assert arrived.outer_source == ipaddress.IPv4Address("192.168.1.10").packed
        assert arrived.outer_destination == ipaddress.IPv4Address("192.168.2.20").packed
        assert (arrived.source_port, arrived.payload) == (50001, vxlan)
        assert host1.stack.counters["arp_requests_sent"] >= 1
        assert host2.stack.counters["arp_replies_sent"] >= 1  # the router asked, tagged
        # And back, from the VLAN subnet, through the router to host1's second PA.
        host2.send_ip(1, outer_udp("192.168.2.21", "192.168.1.11", 50002, vxlan[::-1]))
        pump([host1, host2], lambda: bool(at_host1))
        [back] = at_host1
        assert back.uplink == 1
        assert back.outer_source == ipaddress.IPv4Address("192.168.2.21").packed
        assert (back.source_port, back.payload) == (50002, vxlan[::-1])
        gateway = ipaddress.IPv4Address("192.168.2.1").packed
        assert gateway in host2.stack.neighbours(1, time.monotonic())
    finally:
        host1.close()
        host2.close()


def test_router_can_ping_a_userspace_pa_on_the_vlan(figure8: tuple[builder.Lab, Path]) -> None:
    lab, _ = figure8
    host2 = start_host(lab, "host2", [])
    try:
        ping = subprocess.Popen(
            ["ip", "netns", "exec", lab.names.router, "ping", "-c", "1", "-W", "3", "192.168.2.20"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        pump([host2], lambda: ping.poll() is not None)
        output = ping.communicate()[0]
        assert ping.returncode == 0, output
        assert host2.stack.counters["icmp_echo_replies"] == 1
    finally:
        host2.close()


def test_a_vm_reaches_nothing_without_a_switch(figure8: tuple[builder.Lab, Path]) -> None:
    lab, _ = figure8
    vm = lab.names.vm("contoso-web")
    assert set(netns.link_names(vm)) == {"lo", "eth0"}
    assert netns.exec_in(vm, ["cat", "/sys/class/net/eth0/mtu"]).stdout.strip() == "1500"
    routes = netns.exec_in(vm, ["ip", "-4", "route"]).stdout
    assert "default via 10.1.1.1 dev eth0" in routes
    features = netns.exec_in(vm, ["ethtool", "-k", "eth0"]).stdout
    for feature in (
        "tx-checksumming: off",
        "tcp-segmentation-offload: off",
        "generic-segmentation-offload: off",
        "scatter-gather: off",
    ):
        assert feature in features
    for target in ("10.1.1.11", "10.1.1.1", "192.168.2.1"):
        result = netns.exec_in(vm, ["ping", "-c", "1", "-W", "1", target], check=False)
        assert result.returncode != 0, f"{vm} reached {target}"


def test_a_failed_build_names_the_step_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topology = dataclasses.replace(load(EXAMPLES / "figure8.yaml"), name=unique_lab_name())
    prefix = builder.LabNames(topology.name).prefix

    def broken(namespace: str, ifname: str) -> None:
        raise LabError("ethtool: simulated failure")

    monkeypatch.setattr(netns, "disable_offloads", broken)
    try:
        with pytest.raises(LabError, match=r"VM contoso-sql: namespace .*: ethtool: simulated"):
            builder.build(topology, run_root=tmp_path)
        assert netns.list_namespaces(prefix) == []
        assert list((tmp_path / topology.name).glob("*.pid")) == []
    finally:
        builder.teardown(topology, run_root=tmp_path)


def test_clean_removes_namespaces_and_daemons(figure8_own: tuple[builder.Lab, Path]) -> None:
    lab, run_root = figure8_own
    pid = lab.pids["vlanport-pa2"]
    assert builder.alive(pid)
    report = builder.clean(lab.names.prefix, run_root=run_root)
    assert pid in report.daemons
    assert not builder.alive(pid)
    assert len(report.namespaces) == 8
    assert netns.list_namespaces(lab.names.prefix) == []
    assert not (run_root / lab.topology.name).exists()
    # A second clean finds nothing and does not fail.
    again = builder.clean(lab.names.prefix, run_root=run_root)
    assert again == builder.CleanReport((), (), ())
