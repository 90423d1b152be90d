"""A real DHCPv6 client in a lab VM (``dhcp: true`` with ``ip6``): ISC ``dhclient -6``.

busybox has no DHCPv6 client here, so ``start`` runs Debian's ``dhclient -6`` in the
VM's namespace, in the foreground of its own session (``dhcp6-<vm>.pid``: the lab's
``clean`` stops it by that pid, as every lab daemon), with its own pid file, lease file,
configuration and script in the lab's run directory: nothing under /etc or /var is
touched. The script adds the leased address as a /128, as RFC 8415 gives it: the
subnet's prefix and the default route come from the host's Router Advertisement (M and
O set, on-link prefix). It records the lease in ``dhcp6-<vm>.lease`` (``read_lease``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from openhnv.lab import builder, daemons, netns
from openhnv.lab.errors import LabError

CLIENT = "dhclient"  # Debian package isc-dhcp-client (Makefile APT_PACKAGES)
LEASE_SECONDS = 30.0  # how long ``start`` waits for the first lease
INTERFACE = "eth0"

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


def daemon_name(vm: str) -> str:
    return f"dhcp6-{vm}"


def lease_file(run_dir: Path, vm: str) -> Path:
    return run_dir / f"{daemon_name(vm)}.lease"


def start(run_dir: Path, namespace: str, vm: str, timeout: float = LEASE_SECONDS) -> int:
    """Run ``dhclient -6`` for ``vm`` in ``namespace``; its pid once the first lease is
    applied."""
    binary = shutil.which(CLIENT)
    if binary is None:
        raise LabError(f"VM {vm}: dhcp: true with ip6 needs {CLIENT} (isc-dhcp-client)")
    name = daemon_name(vm)
    script, config = run_dir / f"{name}.sh", run_dir / f"{name}.conf"
    lease = lease_file(run_dir, vm)
    lease.unlink(missing_ok=True)
    script.write_text(_SCRIPT.replace("{lease}", str(lease)), encoding="ascii")
    script.chmod(0o755)
    config.write_text(_CONFIG, encoding="ascii")
    # dhclient's own pid file is not ``<name>.pid``: that one is the lab's (daemons)
    argv = ["ip", "netns", "exec", namespace, binary, "-6",
            "-d", "-pf", str(run_dir / f"{name}.dhclient-pid"),
            "-lf", str(run_dir / f"{name}.leases"), "-cf", str(config), "-sf", str(script),
            INTERFACE]  # fmt: skip
    process = daemons.spawn(run_dir, name, argv)
    daemons.wait_ready(process, name, daemons.logfile(run_dir, name), lease.exists, timeout)
    return process.pid


def bound(namespace: str) -> bool:
    """The VM's interface holds a global IPv6 address (its lease applied)."""
    shown = netns.exec_in(
        namespace, ["ip", "-6", "-o", "addr", "show", "dev", INTERFACE, "scope", "global"]
    )
    return bool(shown.stdout.strip())


def restart_unbound(run_dir: Path, namespace: str, vm: str) -> int | None:
    """Start ``vm``'s client again when its interface lost its address (a rebuilt host
    took the VM's link, and a bound dhclient waits for its renewal time); the new pid
    once it holds a lease, None when nothing had to be done."""
    if bound(namespace):
        return None
    builder.stop_pidfile(daemons.pidfile(run_dir, daemon_name(vm)))
    return start(run_dir, namespace, vm)


def read_lease(run_dir: Path, vm: str) -> dict[str, str]:
    """What the DHCPv6 server gave ``vm``: ip6, prefixlen, dns6, valid, preferred (empty
    when the client has no lease)."""
    path = lease_file(run_dir, vm)
    if not path.exists():
        return {}
    pairs = (line.partition("=") for line in path.read_text(encoding="ascii").splitlines())
    return {key: value for key, _, value in pairs if key}
