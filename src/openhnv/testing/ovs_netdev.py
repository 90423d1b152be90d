"""Open vSwitch with the userspace (netdev) datapath on a DataplaneLab (the benchmark's peer).

Each host namespace gets its own ``ovsdb-server`` and ``ovs-vswitchd`` (no kernel
datapath here), with private database, socket, pidfile, unixctl, log and run
directory under a temporary directory; nothing touches the system's
/etc/openvswitch or /run/openvswitch. OVS userspace tunnelling wants the underlay
address on a bridge of its own, so per host::

    br-phy (netdev)   up0 (the uplink) + LOCAL, which holds the PA in the host kernel
    br-int (netdev)   vm-<vm> (the VM port) + vx0 (vxlan, remote_ip=peer PA, key=5001)

Both bridges use the NORMAL action (MAC learning). A frame from the VM is
encapsulated on vx0 and sent out of br-phy; a VXLAN frame to the PA arriving on up0
is popped by the datapath before it would reach br-phy's LOCAL port.

Daemons run in the foreground as children of this process (``ip netns exec`` execs
them, so the child's pid is the daemon's, the one its ``--pidfile`` names) and are
stopped by that pid, then reaped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from openhnv.lab import netns
from openhnv.testing.dataplane import DataplaneLab
from openhnv.testing.polling import eventually
from openhnv.testing.processes import cpu_times

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
PROGRAMS = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl")
VNI = 5001
READY_SECONDS = 15.0
STOP_SECONDS = 5.0
PATH_SECONDS = 20.0  # until a first ping crosses the OVS tunnel


def unavailable() -> str | None:
    """Why OVS cannot run here, or None when it can."""
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if missing:
        return (
            f"{', '.join(missing)} not installed (Debian package openvswitch-switch;"
            " `make bench` installs it)"
        )
    if not SCHEMA.is_file():
        return f"{SCHEMA} missing (Debian package openvswitch-common)"
    return None


def version() -> str:
    """``ovs-vswitchd --version``'s first line, e.g. ``ovs-vswitchd (Open vSwitch) 3.1.0``."""
    result = subprocess.run(["ovs-vswitchd", "--version"], capture_output=True, text=True,
                            check=False)  # fmt: skip
    return (result.stdout.splitlines() or ["unknown"])[0]


class OvsError(RuntimeError):
    """An OVS daemon or command failed; the message names the host and the step."""


class OvsHost:
    """ovsdb-server + ovs-vswitchd inside one host namespace, all paths under ``run_dir``."""

    def __init__(self, namespace: str, run_dir: Path) -> None:
        self.namespace = namespace
        self.dir = run_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db_socket = self.dir / "db.sock"
        self.env = dict(os.environ)
        for var in ("OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"):
            self.env[var] = str(self.dir)
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopped: list[int] = []

    # -- daemons -----------------------------------------------------------------------

    def _paths(self, name: str) -> list[str]:
        return [f"--pidfile={self.dir / name}.pid", f"--unixctl={self.dir / name}.ctl",
                f"--log-file={self.dir / name}.log", "-vconsole:off", "-vsyslog:off",
                "-vfile:info"]  # fmt: skip

    def _spawn(self, name: str, argv: list[str]) -> None:
        with open(self.dir / f"{name}.out", "ab") as out:
            self.children[name] = subprocess.Popen(
                ["ip", "netns", "exec", self.namespace, *argv, *self._paths(name)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=self.env,
                start_new_session=True,
            )  # fmt: skip

    def _wait_for(self, name: str, ready: Path) -> None:
        deadline = time.monotonic() + READY_SECONDS
        child = self.children[name]
        while not ready.exists():
            if child.poll() is not None:
                raise OvsError(f"{self.namespace}: {name} exited ({child.returncode}): "
                               f"{self._tail(name)}")  # fmt: skip
            if time.monotonic() > deadline:
                raise OvsError(f"{self.namespace}: {name} not ready in {READY_SECONDS:g} s")
            time.sleep(0.05)

    def _tail(self, name: str) -> str:
        for suffix in (".log", ".out"):
            path = self.dir / f"{name}{suffix}"
            lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
            if lines:
                return lines[-1]
        return "no output"

    def start(self) -> None:
        """Create the database, start both daemons, wait until each answers."""
        db = self.dir / "conf.db"
        subprocess.run(["ovsdb-tool", "create", str(db), str(SCHEMA)], check=True,
                       capture_output=True, env=self.env)  # fmt: skip
        self._spawn("ovsdb-server", ["ovsdb-server", str(db), f"--remote=punix:{self.db_socket}",
                                     "--no-self-confinement"])  # fmt: skip
        self._wait_for("ovsdb-server", self.db_socket)
        self.vsctl("--no-wait", "init")
        self._spawn("ovs-vswitchd", ["ovs-vswitchd", f"unix:{self.db_socket}",
                                     "--no-self-confinement"])  # fmt: skip
        self._wait_for("ovs-vswitchd", self.dir / "ovs-vswitchd.ctl")

    def stop(self) -> None:
        """Stop both daemons by their pidfile pid (vswitchd first); ``stopped`` lists them."""
        for name in ("ovs-vswitchd", "ovsdb-server"):
            child = self.children.pop(name, None)
            if child is None:
                continue
            pid = child.pid  # the daemon runs in the foreground: the child we started
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                try:
                    child.wait(STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    child.wait()
                self.stopped.append(pid)

    def cpu_times(self) -> tuple[float, float]:
        """(user, system) CPU seconds of ovs-vswitchd so far, all its threads."""
        return cpu_times(self.children["ovs-vswitchd"].pid)

    def rx_frames(self) -> int:
        """Frames the datapath received on the uplinks and VM ports (``dpctl/show -s``)."""
        total, counted = 0, False
        for line in self.appctl("dpctl/show", "-s").splitlines():
            words = line.split()
            if line.startswith("  port "):  # "  port 2: up0" / "  port 1: br-phy (tap)"
                name = words[2] if len(words) > 2 else ""
                counted = name.startswith(("up", "vm-")) and len(words) == 3
            elif counted and words[:1] == ["RX"] and words[1].startswith("packets:"):
                total += int(words[1].split(":", 1)[1])
        return total

    # -- commands ----------------------------------------------------------------------

    def vsctl(self, *args: str) -> str:
        return self._run(["ovs-vsctl", f"--db=unix:{self.db_socket}", "--timeout=20", *args])

    def appctl(self, *args: str) -> str:
        return self._run(["ovs-appctl", "-t", str(self.dir / "ovs-vswitchd.ctl"), *args])

    def _run(self, argv: list[str]) -> str:
        result = subprocess.run(["ip", "netns", "exec", self.namespace, *argv],
                                capture_output=True, text=True, env=self.env, timeout=30,
                                check=False)  # fmt: skip
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip() or f"status {result.returncode}"
            raise OvsError(f"{self.namespace}: `{' '.join(argv[:2])} ... {argv[-1]}`: {detail}")
        return result.stdout


def configure(lab: DataplaneLab, ovs: OvsHost, host: str, vm: str, peer_host: str) -> None:
    """br-phy with the uplink and the PA, br-int with the VM port and a vxlan port."""
    ns, pa = lab.host_ns(host), lab.pa(host)
    prefix = lab.pa_config(host).prefix_length
    ovs.vsctl("add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev")
    ovs.vsctl("add-port", "br-phy", lab.names.uplink(0))
    netns.exec_in(ns, ["ip", "addr", "add", f"{pa}/{prefix}", "dev", "br-phy"])
    netns.exec_in(ns, ["ip", "link", "set", "br-phy", "up"])
    ovs.vsctl("add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev")
    ovs.vsctl("add-port", "br-int", lab.names.vm_port(vm))
    ovs.vsctl("add-port", "br-int", "vx0", "--", "set", "interface", "vx0", "type=vxlan",
              f"options:remote_ip={lab.pa(peer_host)}", f"options:local_ip={pa}",
              f"options:key={VNI}")  # fmt: skip


def wait_path(lab: DataplaneLab, src: str, dst: str, timeout: float = PATH_SECONDS) -> None:
    """Until ``src`` pings ``dst`` (the tunnel's route and neighbour are resolved)."""
    try:
        eventually(lambda: lab.ping(src, lab.vm_ip(dst), count=1), f"{src} pings {dst}", timeout)
    except AssertionError as err:
        raise OvsError(f"OVS: {src} cannot reach {dst} within {timeout:g} s") from err
