"""Which OVSDB remote a server is reached at, and the ``configurationState`` documents.

Pure functions, no I/O. A server's ``properties.connections[].managementAddresses`` hold
what Microsoft's scripts put there: a bare IP address or a DNS name (SDN Express gives
the host's FQDN, and the connection's ``port``). As for Microsoft's Network Controller,
such an address means the host agent's OVSDB over SSL, at the connection's ``port`` or
6640 (``ssl:ADDRESS:PORT``; a name is resolved when dialed), authenticated both ways
with ``hnv pki`` certificates. For development an address may also name a remote
itself: ``unix:/absolute/path``, ``tcp:IP:PORT`` or ``ssl:IP:PORT`` (IPv6 as ``[addr]``).
The publisher dials the first usable address, over ``connections`` in order.

``configurationState`` follows the Network Controller's shape (NC-REFERENCE.md 1.2):
``{"status": "Success"|"Failure"|"Warning", "lastUpdatedTime": ISO-8601,
"detailedInfo": [{"source", "code", "message"}]}``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from openhnv.controller.errors import ControllerError
from openhnv.ovsdb.keys import QOS_GRANTED_STATUS, QOS_RESERVED_STATUS, QOS_UPLINK_STATUS

SOURCE = "SoftwareDefinedNetworking"
SUCCESS = "Success"
FAILURE = "Failure"
WARNING = "Warning"

# detailedInfo codes
CODE_SUCCESS = "Success"
HOST_NOT_CONNECTED = "HostNotConnected"
INVALID_MANAGEMENT_ADDRESS = "InvalidManagementAddress"
POLICY_CONFIGURATION_FAILURE = "PolicyConfigurationFailure"
POLICY_COMPILE_FAILURE = "PolicyCompileFailure"
PORT_ON_OTHER_HOST = "PortReportedOnOtherHost"
PROVIDER_ADDRESS_MOVED = "ProviderAddressMoved"
RESERVATION_SCALED = "ReservationScaled"
TEAM_MEMBER = "team_member"  # Physical_Port.status of a host's team member row

REMOTE_KINDS = ("unix", "tcp", "ssl")
PORT_MAX = 65535
OVSDB_PORT = 6640  # the NC's OVSDB port on a host (NC-REFERENCE.md 2.1)
DNS_NAME_MAX = 253
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


class AddressError(ControllerError, ValueError):
    """A server's management addresses name no usable OVSDB remote; the message says why.

    ``code`` is ``InvalidManagementAddress`` for a malformed remote and
    ``HostNotConnected`` when no address is an OVSDB remote at all.
    """

    def __init__(self, message: str, code: str = INVALID_MANAGEMENT_ADDRESS) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Remote:
    """An OVSDB remote of a host: ``unix:PATH``, ``tcp:IP:PORT`` or ``ssl:IP:PORT``."""

    kind: str  # "unix" | "tcp" | "ssl"
    path: str = ""  # unix
    ip: str = ""  # tcp, ssl: an IP address, or (a bare management address) a DNS name
    port: int = 0

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        ip = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{self.kind}:{ip}:{self.port}"


def parse_remote(text: str) -> Remote:
    """``"tcp:127.0.0.1:6640"`` -> Remote; AddressError naming what is wrong."""
    kind, sep, rest = text.partition(":")
    if not sep or kind not in REMOTE_KINDS:
        raise AddressError(
            f"management address {text!r} is not an OVSDB remote "
            "(unix:/PATH, tcp:IP:PORT or ssl:IP:PORT)"
        )
    if kind == "unix":
        if not rest.startswith("/"):
            raise AddressError(f"management address {text!r}: the socket path must be absolute")
        return Remote("unix", path=rest)
    host, sep, port = rest.rpartition(":")
    if not sep or not host:
        raise AddressError(f"management address {text!r} must be {kind}:IP:PORT")
    if not port.isdigit() or not 0 < int(port) <= PORT_MAX:
        raise AddressError(f"management address {text!r}: port {port!r} is not 1..{PORT_MAX}")
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise AddressError(
            f"management address {text!r}: {host!r} is not an IP address (names are not resolved)"
        ) from None
    return Remote(kind, ip=str(ip), port=int(port))


def is_dns_name(text: str) -> bool:
    """A host name such as ``host01.contoso.local`` (RFC 1123 labels)."""
    labels = text.rstrip(".").split(".")
    return 0 < len(text) <= DNS_NAME_MAX and all(_DNS_LABEL.fullmatch(x) for x in labels)


def bare_remote(address: str, port: object) -> Remote:
    """A bare management address (IP or DNS name) as Microsoft's NC dials it: SSL to the
    host agent's OVSDB at ``port`` (the connection's) or 6640."""
    if port is None:
        port = OVSDB_PORT
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= PORT_MAX:
        raise AddressError(f"connection port {port!r} is not 1..{PORT_MAX}")
    try:
        return Remote("ssl", ip=str(ipaddress.ip_address(address)), port=port)
    except ValueError:
        pass
    if not is_dns_name(address):
        raise AddressError(
            f"management address {address!r} is neither an IP address, a DNS name nor an "
            "OVSDB remote (unix:/PATH, tcp:IP:PORT or ssl:IP:PORT)"
        )
    return Remote("ssl", ip=address.rstrip(".").casefold(), port=port)


def server_remote(server: Mapping[str, Any]) -> Remote:
    """The OVSDB remote of a server document (a GET document); AddressError if none.

    The first management address, over ``connections`` in order, is used: an OVSDB
    remote as written, a bare IP or DNS name as ``ssl:`` at the connection's ``port``
    (default 6640). A malformed one is an error, not skipped.
    """
    props = server.get("properties") or {}
    connections = props.get("connections") or []
    for connection in connections if isinstance(connections, list) else []:
        addresses = connection.get("managementAddresses") if isinstance(connection, dict) else None
        for address in addresses if isinstance(addresses, list) else []:
            if not isinstance(address, str):
                continue
            if address.partition(":")[0] in REMOTE_KINDS and ":" in address:
                return parse_remote(address)
            return bare_remote(address, connection.get("port"))
    raise AddressError(
        "properties.connections has no managementAddresses: the host cannot be reached",
        HOST_NOT_CONNECTED,
    )


def server_remotes(
    docs: Sequence[Mapping[str, Any]],
) -> tuple[dict[str, Remote], dict[str, AddressError]]:
    """Server resourceId -> remote, and -> why it has none, for server GET documents.

    Two servers naming one remote: the first by resourceId keeps it, the other is an error.
    """
    wanted: dict[str, Remote] = {}
    errors: dict[str, AddressError] = {}
    owner: dict[str, str] = {}
    for doc in sorted(docs, key=lambda d: str(d.get("resourceId", ""))):
        server_id = str(doc.get("resourceId", ""))
        try:
            remote = server_remote(doc)
        except AddressError as err:
            errors[server_id] = err
            continue
        other = owner.setdefault(str(remote), server_id)
        if other != server_id:
            errors[server_id] = AddressError(
                f"management address {remote} is already server {other}'s"
            )
            continue
        wanted[server_id] = remote
    return wanted, errors


def timestamp(now: float) -> str:
    """``now`` (seconds since the epoch) as the NC's ``lastUpdatedTime``."""
    return datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")


def configuration_state(status: str, code: str, message: str, now: float) -> dict[str, Any]:
    """One ``configurationState`` document."""
    return {
        "status": status,
        "lastUpdatedTime": timestamp(now),
        "detailedInfo": [{"source": SOURCE, "code": code, "message": message}],
    }


def host_state(
    remote: str | None, connected: bool, error: str | None, code: str, now: float
) -> dict[str, Any]:
    """A server's ``configurationState`` from its link.

    ``code`` says what ``error`` is about: the address, the connection, or a refused
    transaction.
    """
    if connected and error is None:
        return configuration_state(SUCCESS, CODE_SUCCESS, f"Host is connected at {remote}.", now)
    if error is None:
        error = f"not connected to {remote} yet"
    return configuration_state(FAILURE, code, error, now)


def is_team_report(row: Mapping[str, Any] | None) -> bool:
    """A host's ``Physical_Port`` row for a team member (not a VM port's)."""
    status = None if row is None else row.get("status")
    return isinstance(status, Mapping) and status.get(TEAM_MEMBER) == "true"


def team_warning(members: Mapping[str, Mapping[str, Any]]) -> str | None:
    """What a server's ``configurationState`` warns of while a team member has no carrier
    or a PA lives away from its home member (the host's team member rows, docs/
    southbound.md); None when the team is whole."""
    down = sorted(m for m, s in members.items() if s.get("carrier") == "down")
    moved = [
        f"{address} on {member}"
        for member, s in sorted(members.items())
        for address in str(s.get("moved_provider_addresses", "")).split(",")
        if address
    ]
    if not down and not moved:
        return None
    return (
        f"Team members without carrier: {', '.join(down) or 'none'}; provider addresses"
        f" moved to another member: {', '.join(moved) or 'none'}."
    )


def reservation_warning(server_id: str, status: Mapping[Any, Any]) -> str | None:
    """What a NIC's ``configurationState`` warns of while host ``server_id`` scaled its
    outbound reservation down (its port row's ``status``, written by the host agent:
    the uplink is oversubscribed); None while the reservation is granted in full."""
    granted = status.get(QOS_GRANTED_STATUS)
    if not granted:
        return None
    reserved = status.get(QOS_RESERVED_STATUS)
    uplink = status.get(QOS_UPLINK_STATUS)
    return (
        f"Outbound reservation of {reserved} Mbit/s scaled to {granted} Mbit/s on host"
        f" {server_id}: the reservations on its uplink {uplink} exceed the uplink's capacity."
    )


__all__ = [
    "OVSDB_PORT",
    "AddressError",
    "Remote",
    "bare_remote",
    "configuration_state",
    "host_state",
    "parse_remote",
    "server_remote",
    "server_remotes",
]
