"""Which links of the host namespace are VM ports and uplinks, watched through netlink.

A VM port is any link whose ifalias is ``openhnv-port <port-id> <mac>`` (port-id = the
NIC's instanceId, mac = the VM's MAC). Uplinks are ``up0``, ``up1``, ...

``LinkWatcher`` owns a raw rtnetlink socket subscribed to link events (RTMGRP_LINK):
``fileno()`` goes into the driver's poll loop, ``events()`` drains it (messages parsed
by pyroute2's marshal), and ``dump()`` lists every link through pyroute2's ``IPRoute``.
Setting an alias alone sends no netlink event (kernel 6.18), so the driver also
re-dumps now and then; ``port_links`` turns a dump into the port table.

Each link's carrier (up, and the lower layer up) comes with it: the driver follows its
uplinks' carrier for team failover.

``python3 -m openhnv.vswitch.portlinks`` (inside a host namespace: ``ip netns exec``)
prints what the driver would find there, as JSON: ports, uplinks, alias problems.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.rtnl import RTMGRP_LINK
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from openhnv.vswitch.errors import VSwitchError

PORT_ALIAS_PREFIX = "openhnv-port"
UPLINK_NAME = re.compile(r"up[0-9]+")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
IFF_UP = 0x1  # <linux/if.h>: administratively up
IFF_LOWER_UP = 0x10000  # <linux/if.h>: the driver signals carrier (L1 up)
_RECV_BYTES = 1 << 16
_RCVBUF = 1 << 20

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """One link as netlink reports it."""

    index: int
    ifname: str
    alias: str | None
    deleted: bool = False
    carrier: bool = True  # up and with carrier (IFF_UP and IFF_LOWER_UP)


@dataclass(frozen=True, slots=True)
class PortLink:
    """A link that is a VM port."""

    index: int
    ifname: str
    port: str
    mac: str


def port_alias(port_id: str, mac: str) -> str:
    """The ifalias that makes a link a VM port: ``openhnv-port <port-id> <mac>``."""
    return f"{PORT_ALIAS_PREFIX} {port_id} {mac.lower()}"


def parse_port_alias(alias: str | None) -> tuple[str, str] | None:
    """(port id, mac) of a VM port alias; None when the alias is not a port's at all.

    Raises ``VSwitchError`` for an alias that claims to be a port but is malformed.
    """
    if not alias:
        return None
    words = alias.split()
    if not words or words[0] != PORT_ALIAS_PREFIX:
        return None
    if len(words) != 3:
        raise VSwitchError(f"ifalias {alias!r}: expected '{PORT_ALIAS_PREFIX} <port-id> <mac>'")
    port, mac = words[1], words[2].lower().replace("-", ":")
    if not _MAC.fullmatch(mac):
        raise VSwitchError(f"ifalias {alias!r}: {words[2]!r} is not a MAC address")
    if int(mac[:2], 16) & 1:
        raise VSwitchError(f"ifalias {alias!r}: {mac} is a multicast MAC, not a VM's")
    return port, mac


def port_links(links: Iterable[LinkInfo]) -> tuple[dict[str, PortLink], list[str]]:
    """The VM ports among ``links`` by port id, and the problems found (bad aliases, a
    port id on two links: the link with the lower index wins)."""
    ports: dict[str, PortLink] = {}
    problems: list[str] = []
    for link in sorted(links, key=lambda x: x.index):
        if link.deleted:
            continue
        try:
            parsed = parse_port_alias(link.alias)
        except VSwitchError as exc:
            problems.append(f"link {link.ifname}: {exc}")
            continue
        if parsed is None:
            continue
        port, mac = parsed
        if port in ports:
            problems.append(f"link {link.ifname}: port {port} is already link {ports[port].ifname}")
            continue
        ports[port] = PortLink(link.index, link.ifname, port, mac)
    return ports, problems


def uplink_names(links: Iterable[LinkInfo]) -> list[str]:
    """The links named ``up<N>``, by N."""
    names = [x.ifname for x in links if not x.deleted and UPLINK_NAME.fullmatch(x.ifname)]
    return sorted(names, key=lambda n: int(n[2:]))


def _info(message: object) -> LinkInfo | None:
    get_attr = getattr(message, "get_attr", None)
    get = getattr(message, "get", None)
    if get_attr is None or get is None:
        return None
    name = get_attr("IFLA_IFNAME")
    if not isinstance(name, str):
        return None
    alias = get_attr("IFLA_IFALIAS")
    deleted = get("event") == "RTM_DELLINK"
    flags = get("flags")
    carrier = isinstance(flags, int) and flags & (IFF_UP | IFF_LOWER_UP) == IFF_UP | IFF_LOWER_UP
    return LinkInfo(int(get("index")), name, alias if isinstance(alias, str) else None, deleted,
                    carrier)  # fmt: skip


class LinkWatcher:
    """Link events and dumps of the current network namespace."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, 0)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            self._sock.bind((0, RTMGRP_LINK))
        except OSError:
            self._sock.close()
            raise
        self._marshal = MarshalRtnl()
        self.overflowed = False

    def fileno(self) -> int:
        return self._sock.fileno()

    def events(self) -> list[LinkInfo]:
        """Every link event waiting on the socket (``overflowed`` set when some were
        lost: the caller must re-dump)."""
        found: list[LinkInfo] = []
        while True:
            try:
                data = self._sock.recv(_RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                return found
            except OSError:  # ENOBUFS: the kernel dropped events
                self.overflowed = True
                continue
            for message in self._marshal.parse(data):
                info = _info(message)
                if info is not None:
                    found.append(info)

    def dump(self) -> list[LinkInfo]:
        """Every link of the namespace now."""
        with IPRoute() as ipr:
            infos = [_info(m) for m in ipr.get_links()]
        self.overflowed = False
        return [i for i in infos if i is not None]

    def close(self) -> None:
        self._sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Print the VM ports, uplinks and alias problems of the current namespace."""
    if argv:
        print(f"usage: python3 -m {__spec__.name if __spec__ else 'portlinks'}", file=sys.stderr)
        return 2
    watcher = LinkWatcher()
    try:
        links = watcher.dump()
    finally:
        watcher.close()
    ports, problems = port_links(links)
    report = {
        "ports": {p.port: {"interface": p.ifname, "mac": p.mac} for p in ports.values()},
        "uplinks": uplink_names(links),
        "problems": problems,
    }
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
