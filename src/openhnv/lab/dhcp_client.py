"""A real DHCP client in a lab VM (``dhcp: true``): busybox ``udhcpc`` in its namespace.

The VM's namespace is built without an address (``builder``); once its NIC is
provisioned, ``start`` runs ``udhcpc`` in the namespace, in the foreground of its own
session, with a private pid file in the lab's run directory (``dhcp-<vm>.pid``: the
lab's ``clean`` stops it by that pid, as every lab daemon) and a script of its own that
applies the lease with ``ip`` (address and prefix, default route, MTU) and records what
the server said in ``dhcp-<vm>.lease`` (``read_lease``), DNS servers included: a
namespace has no resolv.conf of its own to write them to.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from openhnv.lab import builder, daemons, netns
from openhnv.lab.errors import LabError

CLIENT = "busybox"  # Debian package busybox (Makefile APT_PACKAGES)
LEASE_SECONDS = 30.0  # how long ``start`` waits for the first lease
INTERFACE = "eth0"

_SCRIPT = """#!/bin/sh
# udhcpc calls this with $1 = deconfig | bound | renew | nak | leasefail
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set dev "$interface" up
    ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    printf 'ip=%s\\nmask=%s\\nrouter=%s\\ndns=%s\\nmtu=%s\\nlease=%s\\nserverid=%s\\n' \\
      "$ip" "$mask" "$router" "$dns" "$mtu" "$lease" "$serverid" > "$LEASE_FILE.tmp"
    mv "$LEASE_FILE.tmp" "$LEASE_FILE"
    ;;
esac
exit 0
"""


def daemon_name(vm: str) -> str:
    return f"dhcp-{vm}"


def lease_file(run_dir: Path, vm: str) -> Path:
    return run_dir / f"{daemon_name(vm)}.lease"


def start(run_dir: Path, namespace: str, vm: str, timeout: float = LEASE_SECONDS) -> int:
    """Run ``udhcpc`` for ``vm`` in ``namespace``; its pid once the first lease is applied."""
    binary = shutil.which(CLIENT)
    if binary is None:
        raise LabError(f"VM {vm}: dhcp: true needs {CLIENT} (apt-get install {CLIENT})")
    name = daemon_name(vm)
    script = run_dir / f"{name}.sh"
    script.write_text(_SCRIPT, encoding="ascii")
    script.chmod(0o755)
    lease = lease_file(run_dir, vm)
    lease.unlink(missing_ok=True)
    argv = ["ip", "netns", "exec", namespace, "env", f"LEASE_FILE={lease}", binary, "udhcpc",
            "-f", "-i", INTERFACE, "-s", str(script), "-t", "10", "-T", "1", "-A", "1"]  # fmt: skip
    process = daemons.spawn(run_dir, name, argv)
    daemons.wait_ready(process, name, daemons.logfile(run_dir, name), lease.exists, timeout)
    return process.pid


def bound(namespace: str) -> bool:
    """The VM's interface holds an IPv4 address (its lease applied)."""
    shown = netns.exec_in(namespace, ["ip", "-4", "-o", "addr", "show", "dev", INTERFACE])
    return bool(shown.stdout.strip())


def restart_unbound(run_dir: Path, namespace: str, vm: str) -> int | None:
    """Start ``vm``'s client again when its interface lost its address (a rebuilt host
    took the VM's link: a bound udhcpc sleeps until renewal and never notices); the
    new pid once it holds a lease, None when nothing had to be done."""
    if bound(namespace):
        return None
    builder.stop_pidfile(daemons.pidfile(run_dir, daemon_name(vm)))
    return start(run_dir, namespace, vm)


def read_lease(run_dir: Path, vm: str) -> dict[str, str]:
    """What the DHCP server gave ``vm``: ip, mask (prefix length), router, dns, mtu, lease,
    serverid (empty when the client has no lease)."""
    path = lease_file(run_dir, vm)
    if not path.exists():
        return {}
    pairs = (line.partition("=") for line in path.read_text(encoding="ascii").splitlines())
    return {key: value for key, _, value in pairs if key}
