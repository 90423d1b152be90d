"""A real DHCP client in a lab VM (``dhcp: true``): busybox ``udhcpc`` in its namespace.

The VM's namespace is built without an address (``builder``); once its NIC is
provisioned, ``start`` runs ``udhcpc`` in the namespace, in the foreground of its own
session, as the lab daemon ``dhcp-<vm>`` (``lease_client``: pid file, lease file,
restart), with a script of its own that applies the lease with ``ip`` (address and
prefix, default route, MTU) and records what the server said in ``dhcp-<vm>.lease``
(``read_lease``), DNS servers included: a namespace has no resolv.conf of its own to
write them to.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from openhnv.lab.errors import LabError
from openhnv.lab.lease_client import INTERFACE, LeaseClient

CLIENT = "busybox"  # Debian package busybox (Makefile APT_PACKAGES)
LEASE_SECONDS = 30.0  # how long ``start`` waits for the first lease

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


CLIENT_KIND = LeaseClient("dhcp", ("ip", "-4", "-o", "addr", "show", "dev", INTERFACE))


def daemon_name(vm: str) -> str:
    return CLIENT_KIND.daemon_name(vm)


def lease_file(run_dir: Path, vm: str) -> Path:
    return CLIENT_KIND.lease_file(run_dir, vm)


def start(run_dir: Path, namespace: str, vm: str, timeout: float = LEASE_SECONDS) -> int:
    """Run ``udhcpc`` for ``vm`` in ``namespace``; its pid once the first lease is applied."""
    binary = shutil.which(CLIENT)
    if binary is None:
        raise LabError(f"VM {vm}: dhcp: true needs {CLIENT} (apt-get install {CLIENT})")
    script = CLIENT_KIND.prepare(run_dir, vm, _SCRIPT)
    lease = lease_file(run_dir, vm)
    argv = ["ip", "netns", "exec", namespace, "env", f"LEASE_FILE={lease}", binary, "udhcpc",
            "-f", "-i", INTERFACE, "-s", str(script), "-t", "10", "-T", "1", "-A", "1"]  # fmt: skip
    return CLIENT_KIND.run(run_dir, vm, argv, timeout)


def bound(namespace: str) -> bool:
    """The VM's interface holds an IPv4 address (its lease applied)."""
    return CLIENT_KIND.bound(namespace)


def restart_unbound(run_dir: Path, namespace: str, vm: str) -> int | None:
    """Start ``vm``'s client again when its interface lost its address (a rebuilt host
    took the VM's link: a bound udhcpc sleeps until renewal and never notices); the
    new pid once it holds a lease, None when nothing had to be done."""
    return CLIENT_KIND.restart_unbound(run_dir, namespace, vm, start)


def read_lease(run_dir: Path, vm: str) -> dict[str, str]:
    """What the DHCP server gave ``vm``: ip, mask (prefix length), router, dns, mtu, lease,
    serverid (empty when the client has no lease)."""
    return CLIENT_KIND.read_lease(run_dir, vm)
