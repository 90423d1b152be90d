"""A real host agent reports VM ports; the publisher binds the NICs; the VMs ping.

Two NICs are created through the controller service **without** a server. A host
namespace runs ``hnv host --driver linux``; two VM namespaces join it by veths whose
host ends carry ``openhnv-port <NIC instanceId> <MAC>``. The agent writes their
``Physical_Port`` rows (``attached=true``); the publisher, dialing the host's unix
socket from the root namespace (a file, no traffic), binds each NIC to the host,
recompiles and publishes; the agent programs the ports and one VM pings the other.
Needs root; everything is named ``hnv-pb<pid>...`` and removed at the end.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functional"))
from publisher_dc import fabric, nic, provisioning, server, vnet

from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore
from openhnv.controller.southbound.publisher import Publisher
from openhnv.lab import netns
from polling import eventually

pytestmark = pytest.mark.root

SRC = Path(__file__).resolve().parents[2] / "src"
WAIT = 30.0
TAG = f"hnv-pb{os.getpid() % 100000}"
HOST_NS = f"{TAG}-h"
VMS = (("vm1", "10.1.1.11", f"{TAG}-v1"), ("vm2", "10.1.1.13", f"{TAG}-v2"))


@pytest.fixture
def service() -> Iterator[ControllerService]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    yield ControllerService(SqliteStore(":memory:"))


@pytest.fixture
def lab(service: ControllerService) -> Iterator[tuple[Path, dict[str, str]]]:
    """The NICs (unplaced), the namespaces and veths, and the running host process."""
    state = Path(tempfile.mkdtemp(prefix=f"{TAG}-"))
    fabric(service)
    vnet(service, "Contoso", "10.1.1.0/24", 5001)
    macs: dict[str, str] = {}
    instances: dict[str, str] = {}
    for name, ip, _ in VMS:
        doc = nic(service, name, "Contoso", ip, None)
        raw = doc["properties"]["privateMacAddress"].replace("-", "").lower()
        macs[name] = ":".join(raw[i : i + 2] for i in range(0, 12, 2))
        instances[name] = doc["instanceId"]
    proc: subprocess.Popen[str] | None = None
    try:
        for ns in (HOST_NS, *(vm_ns for *_, vm_ns in VMS)):
            netns.create_namespace(ns)
        netns.add_veth(HOST_NS, "up0", HOST_NS, "upx0", 1700)
        netns.set_up(HOST_NS, "up0")
        netns.set_up(HOST_NS, "upx0")
        for i, (name, ip, vm_ns) in enumerate(VMS):
            port = f"p{i + 1}"
            netns.add_veth(HOST_NS, port, vm_ns, "eth0", 1500)
            alias = f"openhnv-port {instances[name]} {macs[name]}"
            netns.exec_in(HOST_NS, ["ip", "link", "set", port, "alias", alias])
            netns.set_up(HOST_NS, port)
            netns.set_up(vm_ns, "eth0", mtu=1500, mac=macs[name])
            netns.disable_offloads(vm_ns, "eth0")
            netns.add_address(vm_ns, "eth0", ipaddress.IPv4Interface(f"{ip}/24"))
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        argv = ["ip", "netns", "exec", HOST_NS, sys.executable, "-m", "openhnv", "host",
                "--name", "host1", "--state-dir", str(state), "--driver", "linux"]  # fmt: skip
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
        line: list[str] = []
        stdout = proc.stdout
        assert stdout is not None
        reader = threading.Thread(target=lambda: line.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(WAIT)
        assert line and line[0].strip() == "ready", "hnv host did not start"
        yield state, instances
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        with contextlib.suppress(OSError, ValueError, ProcessLookupError):
            os.kill(int((state / "ovsdb-server.pid").read_text()), signal.SIGKILL)
        for ns in (*(vm_ns for *_, vm_ns in VMS), HOST_NS):
            netns.delete_namespace(ns)
        shutil.rmtree(state, ignore_errors=True)


def test_reported_ports_bind_nics_and_the_vms_ping(
    service: ControllerService, lab: tuple[Path, dict[str, str]]
) -> None:
    state, _ = lab
    publisher = Publisher(service).start()
    try:
        server(service, "host1", f"unix:{state}/ovsdb.sock")
        for name, *_ in VMS:
            eventually(
                lambda n=name: (
                    service.get(f"/networkInterfaces/{n}")["properties"].get("server")
                    == {"resourceRef": "/servers/host1"}
                ),
                f"{name} bound to host1 from the agent's report",
                WAIT,
            )
        for name, *_ in VMS:
            eventually(
                lambda n=name: provisioning(service, f"/networkInterfaces/{n}") == "Succeeded",
                f"{name} Succeeded",
                WAIT,
            )

        def pings() -> bool:
            done = netns.exec_in(VMS[0][2], ["ping", "-c", "1", "-W", "1", VMS[1][1]], check=False)
            return done.returncode == 0

        eventually(pings, "vm1 pings vm2 through the agent's programming", WAIT)
    finally:
        publisher.stop()
