"""The read-only values of gateway resources on GET (``render`` calls in here).

- ``publicIPAddresses/{pip}.ipConfiguration``: the configuration using the address (a
  NIC's ipConfiguration or a gateway connection), as Microsoft shows it;
- ``virtualNetworks/{vn}.virtualGateway``: the virtual gateway serving the VNet
  (openhnv);
- ``virtualGateways/{vg}.compartment.server``: the host the compartment lives on;
- ``networkConnections``: ``sourceIPAddress`` (the public address a tunnel or NAT uses),
  and never the write-only ``sharedSecret`` (but in the compiler's input, ``secrets``).
"""

from __future__ import annotations

from typing import Any

from openhnv.controller.northbound.compartments import COMPARTMENT, gateway_of_vnet
from openhnv.controller.northbound.paths import ResourcePath, parse_path
from openhnv.controller.northbound.public_ips import users
from openhnv.controller.northbound.state import State


def gateway_read_only(
    state: State, path: ResourcePath, props: dict[str, Any], *, secrets: bool = False
) -> None:
    kind = path.kind
    if kind == ("publicIPAddresses",):
        found = sorted(users(state, path), key=lambda u: u[0].ref.casefold())
        if found:
            props["ipConfiguration"] = {"resourceRef": found[0][0].ref}
    elif kind == ("virtualNetworks",):
        gateway = gateway_of_vnet(state, path.key)
        if gateway is not None:
            props["virtualGateway"] = {"resourceRef": gateway}
    elif kind == ("virtualGateways",):
        compartment = props.get(COMPARTMENT)
        if isinstance(compartment, dict):
            placed = state.resolve(parse_path(compartment["gateway"]["resourceRef"]))
            server = (placed or {}).get("properties", {}).get("server")
            props[COMPARTMENT] = {**compartment, **({"server": server} if server else {})}
    elif kind == ("virtualGateways", "networkConnections"):
        ipsec = props.get("ipSecConfiguration")
        if isinstance(ipsec, dict) and "sharedSecret" in ipsec and not secrets:
            props["ipSecConfiguration"] = {k: v for k, v in ipsec.items() if k != "sharedSecret"}
        pip_ref = (props.get("publicIPAddress") or {}).get("resourceRef")
        pip = state.resolve(parse_path(pip_ref)) if isinstance(pip_ref, str) else None
        if pip is not None and pip["properties"].get("ipAddress"):
            props["sourceIPAddress"] = pip["properties"]["ipAddress"]
