"""The faults, each injected into a running lab by the pid it recorded, and undone.

- ``kill_host``: SIGKILL to ``hnv host`` (its ovsdb-server lives on, orphaned), then
  the host started again as the lab starts it; it adopts the server.
- ``kill_ovsdb``: SIGKILL to a host's ovsdb-server; its ``hnv host`` starts it again.
- ``kill_controller``: SIGKILL to ``hnv controller`` (or one replica of a cluster), then
  the same command line started again (same port, same store).
- ``cut_controller``: the host's relay (``relay.UnixRelay``) carries nothing for a while.
- ``restart_host_namespace``: the host's daemons killed, its namespace removed (its
  uplinks and VM links go with it), then made again and the host started: a reboot.

Every kill is by a pid from the lab's pidfiles; nothing outside the lab is touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from openhnv.lab import builder, daemons, netns, orchestrator
from openhnv.lab.orchestrator import RunningLab
from openhnv.lab.rest import ControllerClient
from openhnv.ovsdb.server import OvsdbServer
from openhnv.testing.chaos.relay import UnixRelay
from openhnv.testing.polling import eventually

OVSDB_PIDFILE = "ovsdb-server.pid"


def kill(pid: int) -> None:
    """SIGKILL ``pid`` and wait until it is gone (reaped when it is our child)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)

    def gone() -> bool:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return not builder.alive(pid)

    eventually(gone, f"pid {pid} gone after SIGKILL")


def _pid_in(pidfile: Path) -> int:
    return int(pidfile.read_text(encoding="ascii").split()[0])


def host_pid(lab: RunningLab, host: str) -> int:
    return daemons.recorded(lab.run_dir)[daemons.host_daemon(host)]


def ovsdb_pid(lab: RunningLab, host: str) -> int:
    return _pid_in(lab.host_state_dir(host) / OVSDB_PIDFILE)


def _fastpath(lab: RunningLab) -> str:
    """The data path the lab's hosts were started with (``hnv lab up --fastpath``)."""
    return orchestrator.fastpath_of(lab.run_dir) or "off"


def start_host(lab: RunningLab, host: str) -> None:
    """Start the host again as the lab started it (the same fast-path mode)."""
    daemons.start_host(lab.run_dir, lab.lab.host_namespace(host), host, fastpath=_fastpath(lab))


def kill_host(lab: RunningLab, host: str) -> None:
    kill(host_pid(lab, host))
    start_host(lab, host)


def kill_ovsdb(lab: RunningLab, host: str) -> None:
    old = ovsdb_pid(lab, host)
    kill(old)
    server = OvsdbServer(lab.host_state_dir(host))

    def restarted() -> bool:
        pid = server.pid
        return pid is not None and pid != old and server.running

    eventually(restarted, f"{host}'s ovsdb-server started again by hnv host")


def kill_controller(lab: RunningLab, name: str = daemons.CONTROLLER) -> None:
    """SIGKILL the controller (or replica) ``name``; start its command line again."""
    pid = daemons.recorded(lab.run_dir)[name]
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")
    kill(pid)
    daemons.spawn(lab.run_dir, name, argv)
    url = url_of(lab, name)
    client = ControllerClient.connect(url, timeout=2.0, access=lab.access)
    try:
        eventually(client.reachable, f"{name} serving again at {url}")
    finally:
        client.close()


def url_of(lab: RunningLab, name: str) -> str:
    """The URL of the controller ``controller`` or of the replica ``controller-N``."""
    if name == daemons.CONTROLLER:
        return lab.controller_url
    return lab.controller_urls[int(name.rpartition("-")[2]) - 1]


def leader(lab: RunningLab) -> str:
    """The replica that publishes now (a cluster's leader)."""
    client = ControllerClient.connect_any(lab.controller_urls, timeout=2.0, access=lab.access)
    try:
        state = client.diagnostics()["properties"]
    finally:
        client.close()
    return str(state["leader"]["replicaId"])


def cut_controller(relay: UnixRelay, seconds: float) -> None:
    relay.cut()
    time.sleep(seconds)
    relay.restore()


def restart_host_namespace(lab: RunningLab, host: str) -> None:
    """Kill the host's daemons, remove its namespace, make it again, start the host."""
    namespace = lab.lab.host_namespace(host)
    kill(host_pid(lab, host))
    kill(ovsdb_pid(lab, host))
    netns.delete_namespace(namespace)
    vms = [vm.name for vm in lab.topology.vms if vm.host == host]

    def links_gone() -> bool:
        return not any(builder.VM_INTERFACE in netns.link_names(lab.vm_namespace(vm)) for vm in vms)

    eventually(links_gone, f"{host}'s VM links gone with its namespace")
    ports = {vm: (lab.nic_mac(vm), str(lab.nics[vm]["instanceId"])) for vm in vms}
    builder.rebuild_host(lab.lab, host, ports, vm_offloads=_fastpath(lab) == "on")
    start_host(lab, host)
