"""Properties models: Microsoft's string-typed values, enums, field-naming errors."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openhnv.controller.errors import ApiError
from openhnv.controller.northbound.models import mac_digits, parse_properties

RULE = ("accessControlLists", "aclRules")
BASE = {"protocol": "All", "action": "Allow", "priority": 100, "type": "Inbound"}


def rule(**change: object) -> dict[str, object]:
    return parse_properties(RULE, BASE | change)


def test_strings_and_mixed_case_names() -> None:
    props = parse_properties(
        ("logicalNetworks", "subnets"),
        {"addressprefix": "10.0.0.0/24", "vlanid": "7", "isPublic": "False"},
    )
    assert props["vlanID"] == 7
    assert props["addressPrefix"] == "10.0.0.0/24"
    assert props["isPublic"] is False
    network = parse_properties(("logicalNetworks",), {"networkVirtualizationEnabled": "True"})
    assert network["networkVirtualizationEnabled"] is True


def test_error_names_the_nested_field() -> None:
    with pytest.raises(ApiError) as info:
        parse_properties(
            ("virtualNetworks",),
            {
                "addressSpace": {"addressPrefixes": ["10.0.0.0/8"]},
                "subnets": [{"resourceId": "a", "properties": {}}],
            },
        )
    assert info.value.status == 400
    assert info.value.message == "properties.subnets[0].properties.addressPrefix: is required"


@given(st.integers(0, 65535), st.integers(0, 65535))
def test_port_ranges(low: int, high: int) -> None:
    text = f"{low}-{high}"
    if low <= high:
        assert rule(sourcePortRange=text)["sourcePortRange"] == text
    else:
        with pytest.raises(ApiError, match="sourcePortRange"):
            rule(sourcePortRange=text)


@given(st.integers(65536, 10**9))
def test_ports_above_65535_are_refused(port: int) -> None:
    with pytest.raises(ApiError, match="destinationPortRange"):
        rule(destinationPortRange=str(port))


@given(st.integers(-(10**6), 10**6))
def test_priority_range(priority: int) -> None:
    if 100 <= priority <= 65000:
        assert rule(priority=str(priority))["priority"] == priority
    else:
        with pytest.raises(ApiError, match="priority"):
            rule(priority=str(priority))


@given(st.ip_addresses(v=4), st.integers(0, 32))
def test_acl_prefixes(address: ipaddress.IPv4Address, length: int) -> None:
    network = ipaddress.ip_network(f"{address}/{length}", strict=False)
    assert rule(sourceAddressPrefix=str(network))["sourceAddressPrefix"] == str(network)
    if network.network_address != address:
        with pytest.raises(ApiError, match="host bits"):
            rule(sourceAddressPrefix=f"{address}/{length}")


@given(st.sampled_from(["*", "internet", "INTERNET", "Internet"]))
def test_acl_prefix_tags(tag: str) -> None:
    assert rule(destinationAddressPrefix=tag)["destinationAddressPrefix"] in ("*", "Internet")


@given(st.text(min_size=1, max_size=8))
def test_unknown_enum_values_are_refused(value: str) -> None:
    if value.strip().casefold() in ("all", "tcp", "udp", "icmp"):
        return
    with pytest.raises(ApiError, match="protocol"):
        rule(protocol=value)


@given(st.integers(0, 2**48 - 1), st.sampled_from(["", "-", ":"]))
def test_mac_forms(value: int, separator: str) -> None:
    digits = f"{value:012X}"
    text = separator.join(digits[i : i + 2] for i in range(0, 12, 2))
    assert mac_digits(text.lower()) == digits


@given(st.text(max_size=20))
def test_bad_macs_raise_value_error(text: str) -> None:
    stripped = text.strip().replace("-", "").replace(":", "")
    if len(stripped) == 12 and all(c in "0123456789abcdefABCDEF" for c in stripped):
        return
    with pytest.raises(ValueError, match="is not a MAC address"):
        mac_digits(text)
