"""The Linux driver under HostSwitch: VMs on veths, hosts on a lab fabric, real traffic.

Each test builds its own lab (namespaces ``hnv-lx…``, removed afterwards even on
failure), runs a HostSwitch with a LinuxDriver per host and programs the engines
directly. What crosses the PA network is captured on the fabric side of a host's
uplink and decoded with scapy (parsing only).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import GRE, IP, UDP, Ether  # type: ignore[attr-defined]
from scapy.layers.l2 import Dot1Q
from scapy.layers.vxlan import VXLAN

from openhnv.lab import netns, traffic
from openhnv.testing.dataplane import DataplaneLab, document, lab_name, port_id, wait_ready
from openhnv.testing.polling import eventually
from openhnv.vswitch.afpacket import AfPacketSocket
from openhnv.vswitch.errors import VSwitchError

pytestmark = [pytest.mark.root, pytest.mark.datapath]

VSID = 5001
ECHO_PORT = 7007


@pytest.fixture
def run_root(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def capture_factory() -> Iterator[list[AfPacketSocket]]:
    opened: list[AfPacketSocket] = []
    yield opened
    for sock in opened:
        sock.close()


def capture(lab: DataplaneLab, host: str, opened: list[AfPacketSocket]) -> AfPacketSocket:
    """A socket on the fabric side of ``host``'s up0: sees what the host sends."""
    sock = netns.run_in(lab.names.fabric, AfPacketSocket, lab.names.uplink_peer(host, 0))
    opened.append(sock)
    return sock


def drain(sock: AfPacketSocket, seconds: float = 0.3) -> list[bytes]:
    frames: list[bytes] = []
    deadline = time.monotonic() + seconds
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(0.05):
                frames += sock.recv_batch(1024)
    return frames


class EchoServer:
    """A TCP echo server inside a VM namespace."""

    def __init__(self, lab: DataplaneLab, vm: str) -> None:
        with netns.in_namespace(lab.vm_ns(vm)):
            self.sock = socket.create_server((lab.vm_ip(vm), ECHO_PORT))
        self.sock.settimeout(10)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            while True:
                conn, _ = self.sock.accept()
                threading.Thread(target=self._echo, args=(conn,), daemon=True).start()
        except OSError:
            return

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # a peer gone silent (dropped by policy)
            conn.settimeout(10)
            while data := conn.recv(65536):
                conn.sendall(data)

    def close(self) -> None:
        self.sock.close()


def tcp_echo(lab: DataplaneLab, vm: str, ip: str, size: int = 200_000) -> bytes:
    """Send ``size`` bytes from ``vm`` to the echo server at ``ip``; what came back."""
    with netns.in_namespace(lab.vm_ns(vm)):
        conn = socket.create_connection((ip, ECHO_PORT), timeout=10)
    payload = os.urandom(size)
    got = bytearray()
    with conn:
        sender = threading.Thread(target=conn.sendall, args=(payload,), daemon=True)
        sender.start()
        while len(got) < size:
            chunk = conn.recv(65536)
            if not chunk:
                break
            got += chunk
        sender.join(10)
    assert bytes(got) == payload
    return bytes(got)


def two_hosts(lab: DataplaneLab) -> None:
    s1, s2 = lab.start_switch("h1"), lab.start_switch("h2")
    h1_hop = lab.pa("h2") if lab.pa_config("h1").on_link(lab.pa("h2")) else "192.168.1.1"
    h2_hop = lab.pa("h1") if lab.pa_config("h2").on_link(lab.pa("h1")) else "192.168.2.1"
    wait_ready(s1, 1, [h1_hop])
    wait_ready(s2, 1, [h2_hop])


def tunnel_frames(frames: list[bytes]) -> list[Ether]:
    packets = [Ether(f) for f in frames]
    return [p for p in packets if p.haslayer(VXLAN) or p.haslayer(GRE)]


# ---------------------------------------------------------------- VXLAN across hosts


def test_vxlan_ping_and_tcp_across_hosts_with_flow_source_ports(
    run_root: Path, capture_factory: list[AfPacketSocket]
) -> None:
    with DataplaneLab(document(lab_name("vx")), run_root) as lab:
        two_hosts(lab)
        tap = capture(lab, "h1", capture_factory)
        server = EchoServer(lab, "v2")
        try:
            assert lab.ping("v1", lab.vm_ip("v2"))
            for _ in range(6):  # six connections: six flows, six hashes
                tcp_echo(lab, "v1", lab.vm_ip("v2"), 20_000)
        finally:
            server.close()
        packets = tunnel_frames(drain(tap))
        assert packets, "nothing encapsulated left host h1"
        for p in packets:
            assert p[IP].src == lab.pa("h1")
            assert p[IP].dst == lab.pa("h2")
            assert p[UDP].dport == 4789
            assert p[VXLAN].vni == VSID
            assert 49152 <= p[UDP].sport <= 65535
            assert p[Ether].src == lab.switches["h1"].driver.uplink_mac("up0")
        inner_tcp = {p[UDP].sport for p in packets if p[VXLAN].payload.haslayer("TCP")}
        assert len(inner_tcp) > 1, "every TCP flow got the same outer source port"
        stats = lab.switches["h1"].driver.statistics()  # type: ignore[attr-defined]
        assert stats["rx_truncated"] == 0
        assert stats["tx_dropped_ring"] == 0
        assert stats["rx_port_frames"] > 0
        assert stats["rx_uplink_frames"] > 0


def ping_from_router(lab: DataplaneLab, address: str) -> bool:
    return traffic.ping(lab.names.router, address, count=2) is not None


def test_a_pa_answers_arp_and_ping_from_its_subnet(run_root: Path) -> None:
    with DataplaneLab(document(lab_name("pp")), run_root) as lab:
        two_hosts(lab)
        assert ping_from_router(lab, lab.pa("h1"))
        assert not ping_from_router(lab, "192.168.1.98")  # nobody's PA: no answer
        stats = lab.switches["h1"].driver.statistics()  # type: ignore[attr-defined]
        assert stats["pa:icmp_echo_replies"] >= 2
        assert stats["pa:arp_replies_sent"] >= 1


def test_same_host_vms_talk_without_the_uplink(
    run_root: Path, capture_factory: list[AfPacketSocket]
) -> None:
    doc = document(lab_name("sh"), vms=[("v1", "h1"), ("v2", "h1"), ("v3", "h2")])
    with DataplaneLab(doc, run_root) as lab:
        switch = lab.start_switch("h1")
        wait_ready(switch, 2, [])
        tap = capture(lab, "h1", capture_factory)
        server = EchoServer(lab, "v2")
        try:
            assert lab.ping("v1", lab.vm_ip("v2"))
            tcp_echo(lab, "v1", lab.vm_ip("v2"))
        finally:
            server.close()
        assert tunnel_frames(drain(tap)) == []
        assert set(switch.ports()) == {port_id("v1"), port_id("v2")}


# ---------------------------------------------------------------- NVGRE, VLAN, router


def test_nvgre_key_is_vsid_and_flow_id(
    run_root: Path, capture_factory: list[AfPacketSocket]
) -> None:
    with DataplaneLab(document(lab_name("gr"), encapsulation="nvgre"), run_root) as lab:
        two_hosts(lab)
        tap = capture(lab, "h1", capture_factory)
        server = EchoServer(lab, "v2")
        try:
            assert lab.ping("v1", lab.vm_ip("v2"))
            for _ in range(6):  # six connections: six flows
                tcp_echo(lab, "v1", lab.vm_ip("v2"), 20_000)
        finally:
            server.close()
        packets = tunnel_frames(drain(tap))
        assert packets
        for p in packets:
            assert p[IP].proto == 47
            assert p[IP].src == lab.pa("h1")
            assert p[IP].dst == lab.pa("h2")
            assert p[GRE].key_present == 1
            assert p[GRE].proto == 0x6558
            assert p[GRE].key >> 8 == VSID
            assert p[GRE].payload.haslayer(IP)
        flow_ids = {p[GRE].key & 0xFF for p in packets if p[GRE].payload.haslayer("TCP")}
        assert len(flow_ids) > 1, "every TCP flow got the same FlowID"


def test_vlan_tagged_pa_subnet_behind_the_router(
    run_root: Path, capture_factory: list[AfPacketSocket]
) -> None:
    with DataplaneLab(document(lab_name("vl"), routed=True, vlan=20), run_root) as lab:
        two_hosts(lab)
        tap = capture(lab, "h2", capture_factory)
        server = EchoServer(lab, "v1")
        try:
            assert lab.ping("v2", lab.vm_ip("v1"))
            tcp_echo(lab, "v2", lab.vm_ip("v1"))
        finally:
            server.close()
        packets = tunnel_frames(drain(tap))
        assert packets
        for p in packets:
            assert p[Dot1Q].vlan == 20
            assert p[IP].src == lab.pa("h2")
            assert p[IP].dst == lab.pa("h1")
            assert p[VXLAN].vni == VSID
        assert lab.switches["h2"].neighbors()["192.168.2.1"]
        assert ping_from_router(lab, lab.pa("h2"))  # ARP and echo inside VLAN 20


# ---------------------------------------------------------------- kernel VXLAN peer


def kernel_vtep(lab: DataplaneLab, host: str, vm_ip: str, vm_mac: str, peer: str) -> None:
    """A Linux VXLAN device in ``host``'s namespace: a third-party VTEP with a static FDB
    pointing at VM v1 behind PA ``peer``."""
    ns = lab.host_ns(host)
    v1_mac = lab.topology.vm("v1").mac
    assert v1_mac is not None
    for argv in (
        ["ip", "addr", "add", f"{lab.pa(host)}/24", "dev", "up0"],
        ["ip", "link", "add", "vx0", "type", "vxlan", "id", str(VSID), "local", lab.pa(host),
         "dstport", "4789", "nolearning", "dev", "up0"],
        ["ip", "link", "set", "vx0", "address", vm_mac, "mtu", "1500", "up"],
        ["ip", "addr", "add", f"{vm_ip}/24", "dev", "vx0"],
        ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx0", "dst", peer],
        ["bridge", "fdb", "add", v1_mac, "dev", "vx0", "dst", peer],
        ["ip", "neigh", "replace", lab.vm_ip("v1"), "lladdr", v1_mac, "nud", "permanent",
         "dev", "vx0"],
    ):  # fmt: skip
        netns.exec_in(ns, argv)


def test_wire_interop_with_a_kernel_vxlan_vtep(
    run_root: Path, capture_factory: list[AfPacketSocket]
) -> None:
    doc = document(lab_name("kv"), extra_hosts=["k3"])
    vm_ip, vm_mac = "10.0.0.30", "02:00:00:00:01:30"
    with DataplaneLab(doc, run_root) as lab:
        kernel_vtep(lab, "k3", vm_ip, vm_mac, lab.pa("h1"))
        traffic.set_neighbor(lab.vm_ns("v1"), vm_ip, vm_mac)
        mapping = {"rdid": "vnet", "customer_address": vm_ip, "provider_address": lab.pa("k3"),
                   "customer_mac": vm_mac, "vsid": VSID, "encapsulation": "vxlan"}  # fmt: skip
        switch = lab.start_switch("h1", [mapping])
        wait_ready(switch, 1, [lab.pa("k3")])
        tap = capture(lab, "h1", capture_factory)
        assert lab.ping("v1", vm_ip)  # to the kernel's VTEP
        assert traffic.ping(lab.host_ns("k3"), lab.vm_ip("v1")) is not None  # and back
        sent = tunnel_frames(drain(tap))
        assert sent
        assert all(p[IP].dst == lab.pa("k3") and p[VXLAN].vni == VSID for p in sent)


# ---------------------------------------------------------------- ports come and go


def test_ports_appear_and_disappear_live(run_root: Path) -> None:
    with DataplaneLab(document(lab_name("lv"), vms=[("v1", "h1")]), run_root) as lab:
        switch = lab.start_switch("h1")
        wait_ready(switch, 1, [])
        host = lab.host_ns("h1")
        netns.exec_in(host, ["ip", "link", "add", "late0", "type", "veth", "peer", "name",
                             "late1"])  # fmt: skip
        netns.exec_in(host, ["ip", "link", "set", "late0", "alias",
                             "openhnv-port nic-late 02:00:00:00:02:01"])  # fmt: skip
        netns.exec_in(host, ["ip", "link", "add", "bad0", "type", "veth", "peer", "name",
                             "bad1"])  # fmt: skip
        netns.exec_in(host, ["ip", "link", "set", "bad0", "alias", "openhnv-port only-id"])
        eventually(lambda: "nic-late" in switch.ports(), "late port")
        listing = netns.exec_in(host, [sys.executable, "-m", "openhnv.vswitch.portlinks"])
        found = json.loads(listing.stdout)
        assert found["ports"]["nic-late"] == {"interface": "late0", "mac": "02:00:00:00:02:01"}
        assert found["uplinks"] == ["up0"]
        assert len(found["problems"]) == 1
        assert switch.ports()["nic-late"] == "02:00:00:00:02:01"
        assert set(switch.ports()) == {port_id("v1"), "nic-late"}
        netns.exec_in(host, ["ip", "link", "del", "late0"])
        eventually(lambda: "nic-late" not in switch.ports(), "late port removed")
        driver = switch.driver
        time.sleep(1.5)  # a rescan or two later the bad alias is still counted once
        assert driver.statistics()["port_alias_problems"] == 1  # type: ignore[attr-defined]
        with pytest.raises(VSwitchError, match="up7"):
            driver.uplink_mac("up7")
        with pytest.raises(VSwitchError, match="late1"):
            driver.uplink_mac("late1")  # not named up<N>
        netns.exec_in(host, ["ip", "link", "add", "up3", "address", "02:00:00:00:03:03",
                             "type", "veth", "peer", "name", "late3"])  # fmt: skip
        assert driver.uplink_mac("up3") == "02:00:00:00:03:03"  # opened when first asked
        assert not lab.ping("v1", "10.0.0.99", count=1)  # no mapping: dropped


def test_the_host_kernel_never_processes_what_the_switch_owns(run_root: Path) -> None:
    with DataplaneLab(document(lab_name("ik"), vms=[("v1", "h1")]), run_root) as lab:
        host = lab.host_ns("h1")
        netns.exec_in(host, ["ip", "addr", "add", "192.168.1.97/24", "dev", "up0"])
        assert ping_from_router(lab, "192.168.1.97")  # the kernel answers: no switch
        switch = lab.start_switch("h1")
        wait_ready(switch, 1, [])
        # the drop program, or the fast path's programs in its place
        fast = lab.fastpath == "on"
        port = lab.names.vm_port("v1")
        programs = {"up0": "hnv_tc_uplink" if fast else "hnv_kernel_drop",
                    port: "hnv_tc_port" if fast else "hnv_kernel_drop"}  # fmt: skip
        for ifname, program in programs.items():
            shown = netns.exec_in(host, ["tc", "filter", "show", "dev", ifname, "ingress"])
            assert program in shown.stdout
        netns.exec_in(lab.names.router, ["ip", "neigh", "flush", "all"])
        assert not ping_from_router(lab, "192.168.1.97")  # the kernel's address: unseen
        assert ping_from_router(lab, lab.pa("h1"))  # the switch's PA answers
        switch.stop()
        shown = netns.exec_in(host, ["tc", "filter", "show", "dev", "up0", "ingress"])
        netns.exec_in(lab.names.router, ["ip", "neigh", "flush", "all"])  # forget the failure
        if fast:  # the fast path outlives its process: the host kernel still sees nothing
            assert "hnv_tc_uplink" in shown.stdout
            assert not ping_from_router(lab, "192.168.1.97")
        else:
            assert "hnv_kernel_drop" not in shown.stdout
            assert ping_from_router(lab, "192.168.1.97")


def test_two_uplinks_two_pas_each_answers_on_its_own(
    run_root: Path, capture_factory: list[AfPacketSocket]
) -> None:
    with DataplaneLab(document(lab_name("tw"), uplinks=2), run_root) as lab:
        two_hosts(lab)
        s1 = lab.switches["h1"]
        assert len(s1.provider_addresses()) == 2
        for uplink in (0, 1):
            assert ping_from_router(lab, lab.pa("h1", uplink))
        up1 = netns.run_in(lab.names.fabric, AfPacketSocket, lab.names.uplink_peer("h1", 1))
        capture_factory.append(up1)
        up0 = capture(lab, "h1", capture_factory)
        server = EchoServer(lab, "v2")
        try:
            assert lab.ping("v1", lab.vm_ip("v2"))
            tcp_echo(lab, "v1", lab.vm_ip("v2"))
        finally:
            server.close()
        by_uplink = [tunnel_frames(drain(sock)) for sock in (up0, up1)]
        assert by_uplink[0], "the VM's PA is on up0: its frames leave there"
        for uplink, packets in enumerate(by_uplink):
            mac = s1.driver.uplink_mac(f"up{uplink}")
            assert all(p[IP].src == lab.pa("h1", uplink) and p[Ether].src == mac for p in packets)
