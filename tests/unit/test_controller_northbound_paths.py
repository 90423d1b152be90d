"""Resource paths: case-insensitive collections, ids kept as given, refs validated."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openhnv.controller.errors import ApiError
from openhnv.controller.northbound.paths import KINDS, check_resource_id, parse_path, parse_ref


def test_parse_with_and_without_base() -> None:
    path = parse_path("/Networking/V1/LOGICALNETWORKS/HnvPa/Subnets/S1/IPPOOLS/p")
    assert path.collections == ("logicalNetworks", "subnets", "ipPools")
    assert path.ids == ("HnvPa", "S1", "p")
    assert path.ref == "/logicalNetworks/HnvPa/subnets/S1/ipPools/p"
    assert path.key == path.ref.casefold()
    assert path.top.ref == "/logicalNetworks/HnvPa"
    assert parse_path("/servers").is_collection
    assert parse_path("/servers/h/networkInterfaces").ref == "/servers/h/networkInterfaces"


def test_kinds_cover_every_child_uri() -> None:
    assert ("networkInterfaces", "ipConfigurations") in KINDS
    assert ("accessControlLists", "aclRules") in KINDS
    assert ("servers", "networkInterfaces") in KINDS
    assert ("virtualGateways", "networkConnections") in KINDS
    assert len(KINDS) == 19


@pytest.mark.parametrize(
    "bad", ["/", "/nothing", "/virtualNetworks/v/aclRules/x", "/servers/s/subnets"]
)
def test_unknown_paths_are_404(bad: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_path(bad)
    assert info.value.status == 404


def test_refs() -> None:
    assert parse_ref("/virtualnetworks/a/SUBNETS/b", "f", ("virtualNetworks", "subnets")).ids == (
        "a",
        "b",
    )
    for bad, words in [
        ("virtualNetworks/a", "must be a path"),
        (7, "must be a path"),
        ("/virtualNetworks", "collection"),
        ("/servers/a", "/virtualNetworks/{id}/subnets/{id}"),
        ("/bogus/a", "not a Network Controller resource path"),
    ]:
        with pytest.raises(ApiError) as info:
            parse_ref(bad, "properties.subnet", ("virtualNetworks", "subnets"))
        assert info.value.status == 400
        assert info.value.message.startswith("properties.subnet: ")
        assert words in info.value.message


@given(st.text(min_size=1, max_size=40))
def test_resource_ids(resource_id: str) -> None:
    bad = "/" in resource_id or any(ord(c) < 0x20 or ord(c) == 0x7F for c in resource_id)
    if bad:
        with pytest.raises(ApiError, match="resourceId"):
            check_resource_id(resource_id, "resourceId")
    else:
        check_resource_id(resource_id, "resourceId")
