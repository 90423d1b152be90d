"""The commands that build compartments: ``ip``, ``nft``, ``ethtool`` and sysctls.

Thin and idempotent where the tool allows it (``addr replace``, ``route replace``,
``nft -f`` with ``flush ruleset``); each failure is a ``GatewayError`` naming the
command and what the tool said. Namespaces are named ones (``ip netns``): the gateway
host runs inside its own namespace and makes the compartments from there, so a
compartment's veth peer stays in the host's namespace and nothing touches the root
namespace's links.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from openhnv.gateway.errors import GatewayError

NETNS_DIR = "/run/netns"
OFFLOADS_OFF = ("tx", "off", "tso", "off", "gso", "off", "sg", "off")
TIMEOUT_SECONDS = 30.0


def run(argv: Sequence[str], stdin: str | None = None) -> str:
    """Run a tool; its stdout, or ``GatewayError`` with its stderr."""
    try:
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=TIMEOUT_SECONDS,
            check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as err:
        raise GatewayError(f"{' '.join(argv)}: {err}") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise GatewayError(f"{' '.join(argv)}: {said[-1] if said else f'exit {done.returncode}'}")
    return done.stdout


def namespaces(prefix: str) -> list[str]:
    """The named namespaces starting with ``prefix``."""
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def namespace_exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def create_namespace(name: str) -> None:
    run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])


def delete_namespace(name: str) -> None:
    if namespace_exists(name):
        run(["ip", "netns", "del", name])


def link_exists(name: str, namespace: str | None = None) -> bool:
    argv = ["ip", *(("-n", namespace) if namespace else ()), "link", "show", "dev", name]
    try:
        run(argv)
    except GatewayError:
        return False
    return True


def delete_link(name: str, namespace: str | None = None) -> None:
    if link_exists(name, namespace):
        run(["ip", *(("-n", namespace) if namespace else ()), "link", "del", "dev", name])


def add_veth(host_side: str, namespace: str, inside: str, mtu: int) -> None:
    """A veth pair: ``host_side`` here, ``inside`` in ``namespace``."""
    run(["ip", "link", "add", host_side, "mtu", str(mtu), "type", "veth",
         "peer", "name", inside, "netns", namespace, "mtu", str(mtu)])  # fmt: skip


def add_macvlan(parent: str, namespace: str, inside: str) -> None:
    """A bridge-mode macvlan of ``parent`` (here) named ``inside`` in ``namespace``."""
    run(["ip", "link", "add", "link", parent, "name", inside, "netns", namespace,
         "type", "macvlan", "mode", "bridge"])  # fmt: skip


def set_link(
    name: str,
    namespace: str | None = None,
    *,
    mac: str | None = None,
    alias: str | None = None,
) -> None:
    """Set a link's MAC and alias (when given) and bring it up."""
    base = ["ip", *(("-n", namespace) if namespace else ()), "link", "set", "dev", name]
    if mac is not None:
        run([*base, "address", mac])
    if alias is not None:
        run([*base, "alias", alias])
    run([*base, "up"])


def replace_address(namespace: str, name: str, cidr: str) -> None:
    run(["ip", "-n", namespace, "addr", "replace", cidr, "dev", name])


def replace_route(namespace: str, prefix: str, via: str | None, device: str) -> None:
    hop = ["via", via] if via else []
    run(["ip", "-n", namespace, "route", "replace", prefix, *hop, "dev", device])


def sysctl(namespace: str, key: str, value: str) -> None:
    run(["ip", "netns", "exec", namespace, "sysctl", "-qw", f"{key}={value}"])


def offloads_off(name: str, namespace: str | None = None) -> None:
    """Whole frames with finished checksums for a userspace switch or relay."""
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    run([*prefix, "ethtool", "-K", name, *OFFLOADS_OFF])


def load_ruleset(namespace: str, ruleset: str) -> None:
    """Replace the namespace's nftables ruleset atomically."""
    run(["ip", "netns", "exec", namespace, "nft", "-f", "-"], stdin=ruleset)
