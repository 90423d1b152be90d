"""What the lab's DHCP clients share (``dhcp_client``: udhcpc, ``dhcp6_client``:
dhclient -6): how one runs and what it leaves behind.

A client is a lab daemon named ``<kind>-<vm>`` (``daemons``: its pid file in the lab's
run directory, so the lab's ``clean`` stops it by that pid) in the VM's namespace. It
applies its lease with a script of its own, written next to it, and records the lease
as ``key=value`` lines in ``<kind>-<vm>.lease`` (``read_lease``); ``run`` returns once
the first lease is there. A client whose VM lost its address (a rebuilt host took the
VM's link, and a bound client waits for its renewal time) is started again
(``restart_unbound``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from openhnv.lab import builder, daemons, netns

SCRIPT_MODE = 0o755
INTERFACE = "eth0"  # the VM's NIC in its namespace

Start = Callable[[Path, str, str], int]  # (run_dir, namespace, vm) -> the client's pid


@dataclass(frozen=True, slots=True)
class LeaseClient:
    """One kind of DHCP client: its daemon's name prefix and how to see its address."""

    kind: str  # "dhcp", "dhcp6": the daemon's name is ``<kind>-<vm>``
    show_address: tuple[str, ...]  # ``ip`` argv listing the leased address(es) on INTERFACE

    def daemon_name(self, vm: str) -> str:
        return f"{self.kind}-{vm}"

    def lease_file(self, run_dir: Path, vm: str) -> Path:
        return run_dir / f"{self.daemon_name(vm)}.lease"

    def prepare(self, run_dir: Path, vm: str, script: str) -> Path:
        """Write the client's lease ``script`` (executable) and forget an old lease; the
        script's path."""
        self.lease_file(run_dir, vm).unlink(missing_ok=True)
        path = run_dir / f"{self.daemon_name(vm)}.sh"
        path.write_text(script, encoding="ascii")
        path.chmod(SCRIPT_MODE)
        return path

    def run(self, run_dir: Path, vm: str, argv: Sequence[str], timeout: float) -> int:
        """Spawn the client (``argv``) as ``vm``'s daemon; its pid once its first lease
        is recorded."""
        name = self.daemon_name(vm)
        lease = self.lease_file(run_dir, vm)
        process = daemons.spawn(run_dir, name, list(argv))
        daemons.wait_ready(process, name, daemons.logfile(run_dir, name), lease.exists, timeout)
        return process.pid

    def bound(self, namespace: str) -> bool:
        """The VM's interface holds an address of this kind (its lease applied)."""
        return bool(netns.exec_in(namespace, list(self.show_address)).stdout.strip())

    def restart_unbound(self, run_dir: Path, namespace: str, vm: str, start: Start) -> int | None:
        """``start`` ``vm``'s client again when its interface lost its address; the new
        pid once it holds a lease, None when nothing had to be done."""
        if self.bound(namespace):
            return None
        builder.stop_pidfile(daemons.pidfile(run_dir, self.daemon_name(vm)))
        return start(run_dir, namespace, vm)

    def read_lease(self, run_dir: Path, vm: str) -> dict[str, str]:
        """The recorded lease's fields (empty when the client has none)."""
        path = self.lease_file(run_dir, vm)
        if not path.exists():
            return {}
        pairs = (line.partition("=") for line in path.read_text(encoding="ascii").splitlines())
        return {key: value for key, _, value in pairs if key}
