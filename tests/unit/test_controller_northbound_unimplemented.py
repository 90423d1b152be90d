"""Collections of Microsoft's NC that openhnv does not implement answer 501 by feature."""

from __future__ import annotations

import pytest

from openhnv.controller.northbound.unimplemented import (
    NOT_IMPLEMENTED,
    gateway_on_virtual_server,
    not_implemented,
    unimplemented,
)


@pytest.mark.parametrize(
    ("path", "collection"),
    [
        ("/networking/v1/loadBalancers/lb1", "loadBalancers"),
        ("/Networking/v1/LoadBalancerManager/Config", "loadBalancerManager"),
        ("/networking/v1/iDnsServer/configuration", "iDnsServer"),
        ("/networking/v1/diagnostics/ConnectivityCheck/action", "diagnostics/connectivityCheck"),
        ("/networking/v1/RouteTables", "routeTables"),
    ],
)
def test_unimplemented_collections_name_their_feature(path: str, collection: str) -> None:
    found = unimplemented(path)
    assert found is not None
    assert found[0] == collection
    error = not_implemented(path)
    assert error is not None
    assert error.status == 501
    assert error.code == "NotImplemented"
    assert found[1] in error.message


@pytest.mark.parametrize(
    "path",
    [
        "/networking/v1/virtualNetworks/x",
        "/networking/v1/diagnostics/networkControllerState",
        "/networking/v1/diagnostics",
        "/networking/v1/noSuchThing",
        "/other/loadBalancers",
    ],
)
def test_implemented_or_unknown_paths_are_not_501(path: str) -> None:
    assert not_implemented(path) is None


def test_a_gateway_on_a_virtual_server_is_501_naming_the_field_and_what_to_use() -> None:
    vs = {"resourceRef": "/virtualServers/gw01"}
    err = gateway_on_virtual_server(
        {"Pool": {"resourceRef": "/gatewayPools/p"}, "VirtualServer": vs}
    )
    assert err is not None
    assert err.status == NOT_IMPLEMENTED
    assert err.message.startswith("properties.virtualServer: ")
    assert "properties.server" in err.message
    assert gateway_on_virtual_server({"server": {"resourceRef": "/servers/h"}}) is None
    assert (
        gateway_on_virtual_server({"server": {"resourceRef": "/servers/h"}, "virtualServer": vs})
        is None
    )
