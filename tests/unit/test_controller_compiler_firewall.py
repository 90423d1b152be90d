"""ACL rules as the compiler reads them, and the FW_Rules rows they become."""

from __future__ import annotations

from typing import Any

import pytest

from openhnv.controller.compiler.firewall import (
    ANYWHERE,
    DEFAULT_RULES,
    INTERNET,
    Endpoint,
    fw_rules,
    parse_acl_rule,
)

GOOD: dict[str, Any] = {
    "protocol": "TCP",
    "sourcePortRange": "*",
    "destinationPortRange": "1433",
    "sourceAddressPrefix": "10.1.2.7/24",
    "destinationAddressPrefix": "Internet",
    "action": "Allow",
    "priority": "110",
    "type": "Inbound",
    "logging": "Enabled",
}


def test_a_rule_is_parsed_into_normal_forms() -> None:
    rule = parse_acl_rule("allow-sql", GOOD)
    assert rule.protocols == frozenset({"6"})
    assert rule.source == Endpoint(frozenset({"10.1.2.0/24"}), internet=False)
    assert rule.destination == INTERNET
    assert (rule.source_ports, rule.destination_ports) == ("0-65535", "1433-1433")
    assert (rule.direction, rule.action, rule.priority, rule.logging) == (
        "in",
        "allow",
        110,
        "enabled",
    )


def test_case_and_missing_optional_fields() -> None:
    rule = parse_acl_rule("r", {"type": "outbound", "action": "DENY", "priority": 65000})
    assert rule.protocols == frozenset()
    assert rule.source == rule.destination == ANYWHERE
    assert rule.logging == "disabled"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("protocol", "GRE", "protocol must be one of all, icmp, tcp, udp, got 'GRE'"),
        ("type", "Sideways", "type must be one of inbound, outbound, got 'Sideways'"),
        ("action", None, "action must be one of allow, deny, got None"),
        ("priority", 99, "priority must be 100..65000, got 99"),
        ("priority", 65001, "priority must be 100..65000, got 65001"),
        ("priority", "high", "priority must be an integer, got 'high'"),
        ("priority", True, "priority must be an integer, got True"),
        ("destinationPortRange", "90-80", "destinationPortRange must be ports 0..65535"),
        ("sourcePortRange", "80,443", "sourcePortRange must be a port or 'lo-hi'"),
        ("destinationPortRange", "70000", "destinationPortRange must be ports 0..65535"),
        ("sourceAddressPrefix", "10.1.1.0/33", "sourceAddressPrefix must be a CIDR, '*' or"),
        ("sourceAddressPrefix", "VirtualNetwork", "sourceAddressPrefix must be a CIDR"),
        ("logging", "Maybe", "logging must be one of disabled, enabled, got 'Maybe'"),
    ],
)
def test_bad_values_name_the_field_and_value(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace("*", r"\*")):
        parse_acl_rule("r", {**GOOD, field: value})


def test_a_user_rule_may_not_take_a_default_rule_name() -> None:
    with pytest.raises(ValueError, match="reserved for a default rule"):
        parse_acl_rule(DEFAULT_RULES[0].name, GOOD)


def test_defaults_follow_user_rules_in_every_layer() -> None:
    space = frozenset({"10.1.0.0/16"})
    rows = fw_rules("nic-1", space, [("subnet", (parse_acl_rule("r", GOOD),)), ("nic", ())])
    by_layer = sorted((row["acl_layer"], row["priority"]) for row in rows.values())
    assert by_layer == [
        ("nic", 65001),
        ("nic", 65002),
        ("nic", 65003),
        ("nic", 65500),
        ("nic", 65501),
        ("subnet", 110),
        ("subnet", 65001),
        ("subnet", 65002),
        ("subnet", 65003),
        ("subnet", 65500),
        ("subnet", 65501),
    ]
    user = next(row for row in rows.values() if row["rule_name"] == "r")
    assert user["dst_ip_addresses"] == frozenset()
    assert user["dst_ip_excluded"] == space
