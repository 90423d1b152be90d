"""Which OVSDB remote a server is reached at, and the ``configurationState`` documents.

Pure functions, no I/O. A server's ``properties.connections[].managementAddresses`` may
hold host names or IPs (Microsoft's NC uses them for WinRM too); the publisher dials the
first address that names an OVSDB remote: ``unix:/absolute/path``, ``tcp:IP:PORT`` or
``ssl:IP:PORT`` (IPv6 as ``[addr]``). A bare name or IP is never dialed.

``configurationState`` follows the Network Controller's shape (NC-REFERENCE.md 1.2):
``{"status": "Success"|"Failure"|"Warning", "lastUpdatedTime": ISO-8601,
"detailedInfo": [{"source", "code", "message"}]}``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from openhnv.controller.errors import ControllerError

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

REMOTE_KINDS = ("unix", "tcp", "ssl")
PORT_MAX = 65535


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
    ip: str = ""  # tcp, ssl
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


def server_remote(server: Mapping[str, Any]) -> Remote:
    """The OVSDB remote of a server document (a GET document); AddressError if none.

    The first address, over ``connections`` in order, that starts with ``unix:``,
    ``tcp:`` or ``ssl:`` is used; a malformed one is an error, not skipped.
    """
    props = server.get("properties") or {}
    connections = props.get("connections") or []
    seen: list[str] = []
    for connection in connections if isinstance(connections, list) else []:
        addresses = connection.get("managementAddresses") if isinstance(connection, dict) else None
        for address in addresses if isinstance(addresses, list) else []:
            if not isinstance(address, str):
                continue
            if address.partition(":")[0] in REMOTE_KINDS and ":" in address:
                return parse_remote(address)
            seen.append(address)
    if not seen:
        raise AddressError(
            "properties.connections has no managementAddresses: the host cannot be reached",
            HOST_NOT_CONNECTED,
        )
    raise AddressError(
        f"no managementAddress names an OVSDB remote (unix:/PATH, tcp:IP:PORT or "
        f"ssl:IP:PORT); {', '.join(repr(a) for a in seen)} is not dialed",
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


__all__ = [
    "AddressError",
    "Remote",
    "configuration_state",
    "host_state",
    "parse_remote",
    "server_remote",
    "server_remotes",
]
