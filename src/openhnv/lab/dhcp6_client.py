"""A real DHCPv6 client in a lab VM (``dhcp: true`` with ``ip6``): ISC ``dhclient -6``.

busybox has no DHCPv6 client here, so ``start`` runs Debian's ``dhclient -6`` in the
VM's namespace, in the foreground of its own session, as the lab daemon ``dhcp6-<vm>``
(``lease_client``: pid file, lease file, restart), with its own configuration and
script in the lab's run directory: nothing under /etc or /var is touched. The script
adds the leased address as a /128, as RFC 8415 gives it: the subnet's prefix and the
default route come from the host's Router Advertisement (M and O set, on-link
prefix). It records the lease in ``dhcp6-<vm>.lease`` (``read_lease``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from openhnv.lab.errors import LabError
from openhnv.lab.lease_client import INTERFACE, LeaseClient

CLIENT = "dhclient"  # Debian package isc-dhcp-client (Makefile APT_PACKAGES)
LEASE_SECONDS = 30.0  # how long ``start`` waits for the first lease

_CONFIG = "request dhcp6.name-servers;\n"
# dhclient runs its script with its own variables only: the lease file's path is written in
_SCRIPT = """#!/bin/sh
# dhclient -6 calls this with $reason = PREINIT6 | BOUND6 | RENEW6 | REBIND6 | ...
PATH=/usr/sbin:/usr/bin:/sbin:/bin
LEASE_FILE='{lease}'
case "$reason" in
  BOUND6|RENEW6|REBIND6|REBOOT6)
    [ -n "$old_ip6_address" ] && [ "$old_ip6_address" != "$new_ip6_address" ] && \\
      ip -6 addr del "$old_ip6_address/128" dev "$interface" 2>/dev/null
    ip -6 addr replace "$new_ip6_address/128" dev "$interface" nodad
    printf 'ip6=%s\\nprefixlen=%s\\ndns6=%s\\nvalid=%s\\npreferred=%s\\n' \\
      "$new_ip6_address" "$new_ip6_prefixlen" "$new_dhcp6_name_servers" \\
      "$new_max_life" "$new_preferred_life" > "$LEASE_FILE.tmp"
    mv "$LEASE_FILE.tmp" "$LEASE_FILE"
    ;;
  EXPIRE6|RELEASE6|STOP6)
    [ -n "$old_ip6_address" ] && ip -6 addr del "$old_ip6_address/128" dev "$interface"
    ;;
esac
exit 0
"""


CLIENT_KIND = LeaseClient(
    "dhcp6", ("ip", "-6", "-o", "addr", "show", "dev", INTERFACE, "scope", "global")
)


def daemon_name(vm: str) -> str:
    return CLIENT_KIND.daemon_name(vm)


def lease_file(run_dir: Path, vm: str) -> Path:
    return CLIENT_KIND.lease_file(run_dir, vm)


def start(run_dir: Path, namespace: str, vm: str, timeout: float = LEASE_SECONDS) -> int:
    """Run ``dhclient -6`` for ``vm`` in ``namespace``; its pid once the first lease is
    applied."""
    binary = shutil.which(CLIENT)
    if binary is None:
        raise LabError(f"VM {vm}: dhcp: true with ip6 needs {CLIENT} (isc-dhcp-client)")
    name = daemon_name(vm)
    lease = lease_file(run_dir, vm)
    script = CLIENT_KIND.prepare(run_dir, vm, _SCRIPT.replace("{lease}", str(lease)))
    config = run_dir / f"{name}.conf"
    config.write_text(_CONFIG, encoding="ascii")
    # dhclient's own pid file is not ``<name>.pid``: that one is the lab's (daemons)
    argv = ["ip", "netns", "exec", namespace, binary, "-6",
            "-d", "-pf", str(run_dir / f"{name}.dhclient-pid"),
            "-lf", str(run_dir / f"{name}.leases"), "-cf", str(config), "-sf", str(script),
            INTERFACE]  # fmt: skip
    return CLIENT_KIND.run(run_dir, vm, argv, timeout)


def bound(namespace: str) -> bool:
    """The VM's interface holds a global IPv6 address (its lease applied)."""
    return CLIENT_KIND.bound(namespace)


def restart_unbound(run_dir: Path, namespace: str, vm: str) -> int | None:
    """Start ``vm``'s client again when its interface lost its address (a rebuilt host
    took the VM's link, and a bound dhclient waits for its renewal time); the new pid
    once it holds a lease, None when nothing had to be done."""
    return CLIENT_KIND.restart_unbound(run_dir, namespace, vm, start)


def read_lease(run_dir: Path, vm: str) -> dict[str, str]:
    """What the DHCPv6 server gave ``vm``: ip6, prefixlen, dns6, valid, preferred (empty
    when the client has no lease)."""
    return CLIENT_KIND.read_lease(run_dir, vm)
