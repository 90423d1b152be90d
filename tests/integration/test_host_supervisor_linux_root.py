"""``hnv host --driver linux`` in a host namespace: two VMs of one subnet ping each other.

One host namespace with an uplink ``up0`` (its peer stays in the same namespace, nothing
is sent there) and two VM namespaces joined to it by veths whose host ends carry the
``openhnv-port <NIC instanceId> <MAC>`` alias. The host process runs inside the host
namespace (``ip netns exec``); the compiler's rows for the two NICs go into its OVSDB;
then the agent answers the VMs' ARP and the switch delivers the pings locally. Needs
root; everything is named ``hnv-hp<pid>...`` and removed at the end.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from nb_snapshots import instance_id, nic, server, snapshot, subnet, vnet

from openhnv.controller.compiler.compile import compile_host
from openhnv.host.control import call
from openhnv.lab import netns
from openhnv.ovsdb.client import OvsdbClient
from polling import eventually

pytestmark = pytest.mark.root

SRC = Path(__file__).resolve().parents[2] / "src"
WAIT = 30.0
TAG = f"hnv-hp{os.getpid() % 100000}"
HOST_NS, VM1_NS, VM2_NS = f"{TAG}-h", f"{TAG}-v1", f"{TAG}-v2"
VMS = (
    ("vm1", "001DD8070011", "10.1.1.11", VM1_NS),
    ("vm2", "001DD8070013", "10.1.1.13", VM2_NS),
)


def mac_text(compact: str) -> str:
    return ":".join(compact[i : i + 2] for i in range(0, 12, 2)).lower()


def datacenter() -> dict[str, Any]:
    return snapshot(
        servers=[server("host1", [("192.168.1.10", 24, 0, "192.168.1.1")])],
        vnets=[vnet("Contoso", ["10.1.1.0/24"], [subnet("Subnet1", "10.1.1.0/24", 5001)])],
        nics=[nic(name, mac, [(ip, "Contoso/Subnet1")], "host1") for name, mac, ip, _ in VMS],
    )


@pytest.fixture
def namespaces() -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    try:
        for ns in (HOST_NS, VM1_NS, VM2_NS):
            netns.create_namespace(ns)
        netns.add_veth(HOST_NS, "up0", HOST_NS, "upx0", 1700)
        netns.set_up(HOST_NS, "up0")
        netns.set_up(HOST_NS, "upx0")
        for i, (name, mac, ip, vm_ns) in enumerate(VMS):
            port = f"p{i + 1}"
            netns.add_veth(HOST_NS, port, vm_ns, "eth0", 1500)
            alias = f"openhnv-port {instance_id('/networkInterfaces/' + name)} {mac_text(mac)}"
            netns.exec_in(HOST_NS, ["ip", "link", "set", port, "alias", alias])
            netns.set_up(HOST_NS, port)
            netns.set_up(vm_ns, "eth0", mtu=1500, mac=mac_text(mac))
            netns.disable_offloads(vm_ns, "eth0")
            netns.add_address(vm_ns, "eth0", ipaddress.IPv4Interface(f"{ip}/24"))
        yield
    finally:
        for ns in (VM1_NS, VM2_NS, HOST_NS):
            netns.delete_namespace(ns)


@pytest.fixture
def host(namespaces: None, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    state = tmp_path / "h1"
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    argv = ["ip", "netns", "exec", HOST_NS, sys.executable, "-m", "openhnv", "host",
            "--name", "host1", "--state-dir", str(state), "--driver", "linux"]  # fmt: skip
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(WAIT)
    try:
        assert line and line[0].strip() == "ready", proc.stderr.read() if proc.poll() else line  # type: ignore[union-attr]
        yield proc, state
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with contextlib.suppress(OSError, ValueError, ProcessLookupError):
            os.kill(int((state / "ovsdb-server.pid").read_text()), signal.SIGKILL)


def test_two_vms_ping_through_the_host_process(
    host: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, state = host
    with OvsdbClient(f"unix:{state}/ovsdb.sock") as client:
        client.wait_synced(WAIT)
        client.replace_all(compile_host(datacenter(), "host1"))
    ports = [instance_id(f"/networkInterfaces/{name}") for name, *_ in VMS]

    def programmed() -> bool:
        rows = {p["name"]: p for p in call(state, "list-ports")}
        return all(rows.get(p, {}).get("programmed") and rows[p].get("attached") for p in ports)

    eventually(programmed, "both VM ports reported by the driver and programmed")
    done = netns.exec_in(VM1_NS, ["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.1.1.13"],
                         check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout
    counters = call(state, "counters", port=ports[0])
    assert counters["packets_out"] >= 3
    assert counters.get("punt:arp", 0) >= 1  # the agent answered the ARP
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(WAIT) == 0
    assert not (state / "control.sock").exists()
