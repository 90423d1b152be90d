"""Rules of a virtual gateway's ``networkConnections``, one connection type at a time.

- ``L3``: the compartment joins ``l3Configuration.vlanSubnet`` (a logical subnet of an
  external network, usually with a ``vlanID``) at its one ``ipAddresses`` entry; the
  ``routes`` go through ``peerIPAddresses[0]``, a router on that subnet.
- ``IPSec``: a site-to-site tunnel from the connection's ``publicIPAddress`` to
  ``destinationIPAddress``, pre-shared key or certificates; ``routes`` are the remote
  site's prefixes; the algorithms must be ones the gateway's strongSwan runs.
- ``Nat`` (openhnv): outbound NAT to the Internet behind ``publicIPAddress``, optional
  inbound port mappings; it routes 0.0.0.0/0 itself.
- ``GRE`` is refused: this kernel has no GRE.

Across connections: one public address per virtual gateway, one Nat connection, no
prefix routed twice, none inside the VNet's address space. A pre-shared key is
write-only: a PUT without it keeps the stored one.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from openhnv.controller.errors import bad_request, conflict
from openhnv.controller.northbound.admission import Admission, resolved
from openhnv.controller.northbound.gateway_models import MainMode, QuickMode
from openhnv.controller.northbound.paths import ResourcePath, parse_path
from openhnv.controller.northbound.public_ips import check_single_user
from openhnv.controller.northbound.state import children, find_child
from openhnv.controller.northbound.store import Document
from openhnv.gateway.errors import GatewayError
from openhnv.gateway.proposals import esp_proposal, ike_proposal

DEFAULT_ROUTE = "0.0.0.0/0"
CERTIFICATES = "Certificates"


def legs_needed(adm: Admission) -> dict[str, str]:
    """Logical subnet key -> ref, for every external network the connections join."""
    legs: dict[str, str] = {}
    for connection in children(adm.new, "networkConnections"):
        cp = connection["properties"]
        vlan = (cp.get("l3Configuration") or {}).get("vlanSubnet", {}).get("resourceRef")
        if isinstance(vlan, str):
            legs[parse_path(vlan).key] = vlan
        pip_ref = (cp.get("publicIPAddress") or {}).get("resourceRef")
        if isinstance(pip_ref, str):
            pip = adm.state.resolve(parse_path(pip_ref)) or {}
            subnet = pip.get("properties", {}).get("logicalSubnet", {}).get("resourceRef")
            if isinstance(subnet, str):
                legs[parse_path(subnet).key] = subnet
    return legs


def check_connections(adm: Admission, vnet: ResourcePath, allowed: frozenset[str]) -> None:
    space = [
        ipaddress.ip_network(p)
        for p in resolved(adm.state, vnet)["properties"]["addressSpace"]["addressPrefixes"]
    ]
    routed: dict[str, str] = {}
    public: tuple[str, str] | None = None
    nat: str | None = None
    for i, connection in enumerate(children(adm.new, "networkConnections")):
        base = f"properties.networkConnections[{i}].properties"
        cp = connection["properties"]
        name = str(connection["resourceId"])
        kind = cp["connectionType"]
        if kind == "GRE":
            raise bad_request(
                f"{base}.connectionType", "GRE is not supported by openhnv (no GRE in this kernel)"
            )
        if kind not in allowed:
            raise bad_request(
                f"{base}.connectionType", f"{kind} is not carried by this gateway pool's type"
            )
        if kind == "Nat":
            if nat is not None:
                raise bad_request(base, f"connection {nat} is already the Nat connection")
            nat = name
        _routes(cp, base, name, space, routed)
        pip_ref = (cp.get("publicIPAddress") or {}).get("resourceRef")
        if isinstance(pip_ref, str):
            if public is not None and parse_path(public[0]).key != parse_path(pip_ref).key:
                raise bad_request(
                    f"{base}.publicIPAddress",
                    f"connection {public[1]} uses {public[0]}: one public address per "
                    "virtual gateway",
                )
            public = (pip_ref, name)
            owner = adm.path.child("networkConnections", name)
            check_single_user(adm.state, owner, pip_ref, f"{base}.publicIPAddress")
        if kind == "L3":
            _l3(adm, cp, base)
        elif kind == "IPSec":
            _ipsec(adm, connection, base)
        elif kind == "Nat":
            _nat(cp, base, space)


def _routes(
    cp: dict[str, Any], base: str, name: str, space: list[Any], routed: dict[str, str]
) -> None:
    if cp["connectionType"] == "Nat" and cp.get("routes"):
        raise bad_request(f"{base}.routes", "a Nat connection routes 0.0.0.0/0 by itself")
    for j, route in enumerate(cp.get("routes", [])):
        where = f"{base}.routes[{j}].destinationPrefix"
        prefix = ipaddress.ip_network(route["destinationPrefix"])
        if prefix.version != 4:
            raise bad_request(where, f"{prefix}: only IPv4 routes are supported")
        inside = [str(n) for n in space if n.version == prefix.version and prefix.subnet_of(n)]
        if inside:
            raise bad_request(where, f"{prefix} is inside the VNet's address space {inside[0]}")
        if str(prefix) in routed:
            raise bad_request(where, f"{prefix} is also routed by connection {routed[str(prefix)]}")
        routed[str(prefix)] = name
    if cp["connectionType"] == "Nat":
        if DEFAULT_ROUTE in routed:
            raise bad_request(
                base, f"{DEFAULT_ROUTE} is also routed by connection {routed[DEFAULT_ROUTE]}"
            )
        routed[DEFAULT_ROUTE] = name


def _l3(adm: Admission, cp: dict[str, Any], base: str) -> None:
    config = cp.get("l3Configuration")
    if not config:
        raise bad_request(f"{base}.l3Configuration", "is required for an L3 connection")
    subnet_path = parse_path(config["vlanSubnet"]["resourceRef"])
    network = resolved(adm.state, subnet_path.top)
    if network["properties"].get("networkVirtualizationEnabled"):
        raise bad_request(
            f"{base}.l3Configuration.vlanSubnet",
            f"{subnet_path.ref} is an HNV provider subnet, not an external network",
        )
    prefix = ipaddress.ip_network(resolved(adm.state, subnet_path)["properties"]["addressPrefix"])
    addresses = cp.get("ipAddresses", [])
    if len(addresses) != 1:
        raise bad_request(f"{base}.ipAddresses", "an L3 connection has exactly one address")
    own = ipaddress.ip_address(addresses[0]["ipAddress"])
    if own not in prefix or own in (prefix.network_address, prefix.broadcast_address):
        raise bad_request(
            f"{base}.ipAddresses[0].ipAddress", f"{own} is not a usable address of {prefix}"
        )
    if addresses[0]["prefixLength"] != prefix.prefixlen:
        raise bad_request(
            f"{base}.ipAddresses[0].prefixLength", f"is not {prefix.prefixlen}, that of {prefix}"
        )
    for j, peer in enumerate(cp.get("peerIPAddresses", [])):
        if ipaddress.ip_address(peer) not in prefix or ipaddress.ip_address(peer) == own:
            raise bad_request(f"{base}.peerIPAddresses[{j}]", f"{peer} is not a peer on {prefix}")
    if cp.get("routes") and not cp.get("peerIPAddresses"):
        raise bad_request(f"{base}.peerIPAddresses", "routes need a next hop on the VLAN subnet")
    _l3_address_unique(adm, subnet_path, str(own), f"{base}.ipAddresses[0].ipAddress")


def _l3_address_unique(adm: Admission, subnet: ResourcePath, address: str, where: str) -> None:
    for path, doc in adm.state.all("virtualGateways"):
        if path.key == adm.path.key:
            continue
        for connection in children(doc, "networkConnections"):
            cp = connection["properties"]
            vlan = (cp.get("l3Configuration") or {}).get("vlanSubnet", {}).get("resourceRef")
            if not isinstance(vlan, str) or parse_path(vlan).key != subnet.key:
                continue
            if any(a["ipAddress"] == address for a in cp.get("ipAddresses", [])):
                raise conflict(
                    where, f"{address} is already used by {path.ref}", "DuplicateIPAddress"
                )


def _ipsec(adm: Admission, connection: Document, base: str) -> None:
    cp = connection["properties"]
    if cp.get("destinationIPAddress") is None:
        raise bad_request(f"{base}.destinationIPAddress", "is required for an IPSec connection")
    if cp.get("publicIPAddress") is None:
        raise bad_request(
            f"{base}.publicIPAddress", "is required for an IPSec connection (its local address)"
        )
    if not cp.get("routes"):
        raise bad_request(f"{base}.routes", "an IPSec connection needs the remote prefixes")
    config = cp.get("ipSecConfiguration")
    if config is None:
        raise bad_request(f"{base}.ipSecConfiguration", "is required for an IPSec connection")
    where = f"{base}.ipSecConfiguration"
    config.setdefault(
        "mainMode", MainMode.model_validate({}).model_dump(mode="json", exclude_none=True)
    )
    config.setdefault(
        "quickMode", QuickMode.model_validate({}).model_dump(mode="json", exclude_none=True)
    )
    try:
        ike_proposal(config["mainMode"])
        esp_proposal(config["quickMode"], config["mainMode"])
    except GatewayError as err:
        raise bad_request(where, str(err)) from None
    if config.get("authenticationMethod", "PSK") == CERTIFICATES:
        for name in ("localCertificate", "peerCertificateAuthority"):
            ref = (config.get(name) or {}).get("resourceRef")
            if ref is None:
                raise bad_request(f"{where}.{name}", "is required with Certificates")
            credential = resolved(adm.state, parse_path(ref))["properties"]
            if credential.get("type") != "X509Certificate" or not credential.get("value"):
                raise bad_request(
                    f"{where}.{name}", f"{ref} is not an X509Certificate credential with a value"
                )
        return
    if not config.get("sharedSecret"):
        old = (
            find_child(adm.old, "networkConnections", str(connection["resourceId"]))
            if adm.old
            else None
        )
        kept = ((old or {}).get("properties", {}).get("ipSecConfiguration") or {}).get(
            "sharedSecret"
        )
        if not kept:
            raise bad_request(f"{where}.sharedSecret", "is required with PSK")
        config["sharedSecret"] = kept  # write-only: a PUT without it keeps it


def _nat(cp: dict[str, Any], base: str, space: list[Any]) -> None:
    if cp.get("publicIPAddress") is None:
        raise bad_request(f"{base}.publicIPAddress", "is required for a Nat connection")
    seen: dict[tuple[str, int], int] = {}
    rules = (cp.get("natConfiguration") or {}).get("inboundNatRules", [])
    for j, rule in enumerate(rules):
        where = f"{base}.natConfiguration.inboundNatRules[{j}]"
        backend = ipaddress.ip_address(rule["backendIPAddress"])
        if not any(backend.version == n.version and backend in n for n in space):
            raise bad_request(f"{where}.backendIPAddress", f"{backend} is outside the VNet")
        slot = (rule["protocol"], rule["frontendPort"])
        if slot in seen:
            raise bad_request(
                f"{where}.frontendPort",
                f"{slot[0]} {slot[1]} is also inboundNatRules[{seen[slot]}]",
            )
        seen[slot] = j
