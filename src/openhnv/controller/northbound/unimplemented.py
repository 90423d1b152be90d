"""The Network Controller's collections that openhnv does not implement, by feature.

Microsoft's clients read a 404 as "not there yet" and go on (SDN Express GETs
``loadBalancerManager/config`` and creates what it thinks is missing), so a path under
one of these collections answers ``501 Not Implemented`` naming the feature instead, in
the NC's error shape. The list is the NC's collections (NC-REFERENCE.md 1.1, and the
paths the SDN Express REST wrappers use) minus those in ``paths.TREE`` and openhnv's
``diagnostics/networkControllerState``. Pure: no I/O.
"""

from __future__ import annotations

from openhnv.controller.errors import ApiError
from openhnv.controller.northbound.paths import BASE_PATH

NOT_IMPLEMENTED = 501
NOT_IMPLEMENTED_CODE = "NotImplemented"

SOFTWARE_LOAD_BALANCER = "Software Load Balancer (SLB)"
DIAGNOSTICS = "Network Controller diagnostics"

# collection (or "collection/child" for shared parents) -> the feature it belongs to
FEATURES: dict[str, str] = {
    "loadBalancers": SOFTWARE_LOAD_BALANCER,
    "loadBalancerMuxes": SOFTWARE_LOAD_BALANCER,
    "loadBalancerManager": SOFTWARE_LOAD_BALANCER,
    "virtualServers": "virtual servers (SLB MUX and gateway VM registration)",
    "iDnsServer": "internal DNS (iDNS)",
    "routeTables": "user-defined routing (route tables)",
    "serviceInsertions": "service insertion (port mirroring, virtual appliances)",
    "securityTags": "security tags",
    "learnedIPAddresses": "learned IP addresses",
    "auditingSettings": "firewall auditing",
    "virtualSwitchManager": "virtual switch manager configuration",
    "internalResourceInstances": "internal resource instances",
    "networkControllerBackup": "Network Controller backup",
    "networkControllerRestore": "Network Controller restore",
    "monitoring": "Network Controller monitoring statistics",
    "operations": "asynchronous operations (every openhnv write is synchronous)",
    "operationResults": "asynchronous operations (every openhnv write is synchronous)",
    "discovery": "capability discovery",
    "switches": "physical switch management",
    "diagnostics/connectivityCheck": f"{DIAGNOSTICS}: connectivity check",
    "diagnostics/connectivityCheckResults": f"{DIAGNOSTICS}: connectivity check",
    "diagnostics/slbState": f"{DIAGNOSTICS}: SLB state",
    "diagnostics/slbStateResults": f"{DIAGNOSTICS}: SLB state",
}
_FOLDED = {name.casefold(): (name, feature) for name, feature in FEATURES.items()}
_SHARED_PARENTS = frozenset(name.split("/")[0].casefold() for name in FEATURES if "/" in name)


def unimplemented(path: str) -> tuple[str, str] | None:
    """(collection, feature) when ``path`` (under ``/networking/v1``, any casing) is in a
    collection openhnv does not implement; None otherwise."""
    parts = [p for p in path.split("/") if p]
    base = [p for p in BASE_PATH.split("/") if p]
    if [p.casefold() for p in parts[: len(base)]] != base:
        return None
    parts = parts[len(base) :]
    if not parts:
        return None
    first = parts[0].casefold()
    if first in _SHARED_PARENTS:
        if len(parts) < 2:
            return None
        first = f"{first}/{parts[1].casefold()}"
    return _FOLDED.get(first)


def not_implemented(path: str) -> ApiError | None:
    """The 501 answer for ``path``, or None when openhnv implements (or never heard of) it."""
    found = unimplemented(path)
    if found is None:
        return None
    collection, feature = found
    return ApiError(
        NOT_IMPLEMENTED,
        NOT_IMPLEMENTED_CODE,
        f"/{collection}: {feature} is not implemented by openhnv",
    )


def gateway_on_virtual_server(properties: dict[str, object]) -> ApiError | None:
    """The 501 answer for a gateway body that names a ``virtualServer`` (a gateway VM, as
    SDN Express registers it) instead of openhnv's ``server``; None otherwise."""
    names = {str(name).casefold() for name in properties}
    if "virtualserver" not in names or "server" in names:
        return None
    return ApiError(
        NOT_IMPLEMENTED,
        NOT_IMPLEMENTED_CODE,
        f"properties.virtualServer: gateways on /virtualServers ({FEATURES['virtualServers']}) "
        "are not implemented by openhnv; name the host that runs `hnv host --role gateway` in "
        "properties.server and its external NICs in properties.externalInterfaces",
    )


__all__ = [
    "FEATURES",
    "NOT_IMPLEMENTED",
    "gateway_on_virtual_server",
    "not_implemented",
    "unimplemented",
]
