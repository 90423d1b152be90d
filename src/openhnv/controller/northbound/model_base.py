"""The building blocks of the northbound property models: value types and base classes.

Microsoft clients send numbers and booleans as strings (``"priority": "100"``,
``"vlanid": "7"``, ``"networkVirtualizationEnabled": "True"``) and property names in
mixed case; ``Properties`` accepts both and dumps proper ints, bools and Microsoft's
spelling. Enum values (``one_of``) are matched without regard to (ASCII) case and dumped
in Microsoft's casing. Unknown properties are kept (round-tripped); read-only ones are
dropped on input. The resources' models are in ``models`` and ``gateway_models``.

Each lenient type publishes, in ``/openapi.json``, exactly the inputs it accepts (an
integer or a decimal string within the range, ``true``/``"True"``, an enum in any case,
a MAC in one of its spellings), so the schema and the parser agree.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, WithJsonSchema, model_validator

from openhnv.controller.northbound.patterns import (
    BOOLEAN_PATTERN,
    ID_PATTERN,
    MAC_PATTERN,
    PORT_RANGE_PATTERN,
    anycase_pattern,
    range_pattern,
)

VSID_MIN = 4096
VSID_MAX = 2**24 - 2
ACL_PRIORITY_MIN = 100
ACL_PRIORITY_MAX = 65000
VLAN_MAX = 4094
PORT_MAX = 65535
MAC_HEX_DIGITS = 12
ANY = "*"
INTERNET_TAG = "Internet"
COUNT_MAX = 2**63 - 1  # a count or a size without a limit of its own
MBPS_MAX = 400_000  # a QoS cap, 400 Gbit/s: what a host's buckets hold (vfp.qos.MAX_MBPS)
CREDENTIAL_TYPES = (
    "X509Certificate",
    "X509CertificateSubjectName",
    "UsernamePassword",
    "SnmpCommunityString",
)


def one_of(*values: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        if isinstance(value, str) and value.isascii():
            for candidate in values:
                if candidate.lower() == value.lower():
                    return candidate
        raise ValueError(f"{value!r} is not one of {', '.join(values)}")

    return check


def _enum_schema(*values: str) -> WithJsonSchema:
    return WithJsonSchema(
        {"type": "string", "pattern": anycase_pattern(values), "examples": list(values)}
    )


def int_in(low: int, high: int) -> Callable[[object], int]:
    """An int, or its decimal string (``"100"``), within ``low..high``."""

    def check(value: object) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif (isinstance(value, float) and value.is_integer()) or (
            isinstance(value, str) and re.fullmatch(r"0|[1-9][0-9]*", value)
        ):
            number = int(value)
        if number is None or not low <= number <= high:
            raise ValueError(f"{value!r} is not an integer in {low}..{high}")
        return number

    return check


def int_schema(low: int, high: int) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": low, "maximum": high},
                {"type": "string", "pattern": range_pattern(low, high)},
            ]
        }
    )


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(BOOLEAN_PATTERN, value):
        return value.lower() == "true"
    raise ValueError(f'{value!r} is not a boolean (true, false, "True", "False")')


BOOLEAN_SCHEMA = {"anyOf": [{"type": "boolean"}, {"type": "string", "pattern": BOOLEAN_PATTERN}]}


def _ip(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an IP address")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def _cidr(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a CIDR prefix")
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not a CIDR prefix like 10.1.1.0/24") from None
        raise ValueError(f"{value} has host bits set; the prefix is {loose}") from None


def _acl_prefix(value: object) -> str:
    if isinstance(value, str):
        text = value
        if text == ANY:
            return ANY
        if text.casefold() == INTERNET_TAG.casefold():
            return INTERNET_TAG
        if "/" not in text:
            try:
                ip = ipaddress.ip_address(text)
            except ValueError:
                pass
            else:
                return f"{ip}/{ip.max_prefixlen}"
    try:
        return _cidr(value)
    except ValueError as err:
        if "host bits" in str(err):
            raise
        raise ValueError(f"{value!r} is not a CIDR prefix, '*' or 'Internet'") from None


def _port_range(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and re.fullmatch(PORT_RANGE_PATTERN, value):
        if value == ANY:
            return ANY
        low, _, high = value.partition("-")
        if int(low) <= int(high or low) <= PORT_MAX:
            return value
    raise ValueError(f"{value!r} is not a port range like '80', '1024-65535' or '*'")


def mac_digits(value: object) -> str:
    """``"00-1d-d8-07-00-01"`` -> ``"001DD8070001"``; ValueError when not a MAC."""
    if isinstance(value, str) and re.fullmatch(MAC_PATTERN, value):
        return value.replace("-", "").replace(":", "").upper()
    raise ValueError(f"{value!r} is not a MAC address of 12 hex digits")


def _unicast_mac(value: object) -> str:
    digits = mac_digits(value)
    if int(digits[:2], 16) & 1:
        raise ValueError(f"{value!r} is a multicast MAC address")
    if int(digits, 16) == 0:
        raise ValueError(f"{value!r} is the all-zero MAC address")
    return digits


def mac_dashed(digits: str) -> str:
    """``"001DD8070000"`` -> ``"00-1D-D8-07-00-00"`` (how macPools show MACs)."""
    return "-".join(digits[i : i + 2] for i in range(0, MAC_HEX_DIGITS, 2))


def _pool_mac(value: object) -> str:
    return mac_dashed(mac_digits(value))


SWITCH_WORDS = ("Enabled", "Disabled", "true", "false")


def _switch(value: object) -> str:
    if isinstance(value, bool):
        return "Enabled" if value else "Disabled"
    if isinstance(value, str) and value.isascii():
        text = value.lower()
        if text in ("enabled", "true"):
            return "Enabled"
        if text in ("disabled", "false"):
            return "Disabled"
    raise ValueError(f"{value!r} is not one of Enabled, Disabled")


_IP_SCHEMA = {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}
_PREFIX_SCHEMA = {
    "type": "string",
    "pattern": "^[0-9A-Fa-f:.]+/[0-9]{1,3}$",
    "description": "CIDR prefix without host bits, e.g. 10.1.1.0/24",
}
_ACL_PREFIX_SCHEMA = {
    "type": "string",
    "anyOf": [
        {"pattern": "^[*]$"},
        {"pattern": anycase_pattern(("Internet",))},
        {"format": "ipv4"},
        {"format": "ipv6"},
        {"pattern": _PREFIX_SCHEMA["pattern"]},
    ],
}
_PORT_SCHEMA = {
    "anyOf": [
        {"type": "integer", "minimum": 0, "maximum": PORT_MAX},
        {"type": "string", "pattern": PORT_RANGE_PATTERN},
    ]
}
_MAC_SCHEMA = {"type": "string", "pattern": MAC_PATTERN}
IpAddress = Annotated[str, BeforeValidator(_ip), WithJsonSchema(_IP_SCHEMA)]
Cidr = Annotated[str, BeforeValidator(_cidr), WithJsonSchema(_PREFIX_SCHEMA)]
AclPrefix = Annotated[str, BeforeValidator(_acl_prefix), WithJsonSchema(_ACL_PREFIX_SCHEMA)]
PortRange = Annotated[str, BeforeValidator(_port_range), WithJsonSchema(_PORT_SCHEMA)]
NicMac = Annotated[str, BeforeValidator(_unicast_mac), WithJsonSchema(_MAC_SCHEMA)]
PoolMac = Annotated[str, BeforeValidator(_pool_mac), WithJsonSchema(_MAC_SCHEMA)]
Switch = Annotated[
    str,
    BeforeValidator(_switch),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "boolean"},
                {"type": "string", "pattern": anycase_pattern(SWITCH_WORDS)},
            ]
        }
    ),
]
Count = Annotated[int, BeforeValidator(int_in(0, COUNT_MAX)), int_schema(0, COUNT_MAX)]
Mbps = Annotated[int, BeforeValidator(int_in(0, MBPS_MAX)), int_schema(0, MBPS_MAX)]
Flag = Annotated[bool, BeforeValidator(_flag), WithJsonSchema(BOOLEAN_SCHEMA)]
AclProtocol = Annotated[
    str,
    BeforeValidator(one_of("All", "TCP", "UDP", "ICMP")),
    _enum_schema("All", "TCP", "UDP", "ICMP"),
]
AclAction = Annotated[str, BeforeValidator(one_of("Allow", "Deny")), _enum_schema("Allow", "Deny")]
AclType = Annotated[
    str, BeforeValidator(one_of("Inbound", "Outbound")), _enum_schema("Inbound", "Outbound")
]
Logging = Annotated[
    str, BeforeValidator(one_of("Enabled", "Disabled")), _enum_schema("Enabled", "Disabled")
]
AllocationMethod = Annotated[
    str, BeforeValidator(one_of("Static", "Dynamic")), _enum_schema("Static", "Dynamic")
]
IpVersion = Annotated[str, BeforeValidator(one_of("IPv4", "IPv6")), _enum_schema("IPv4", "IPv6")]
CredentialType = Annotated[
    str,
    BeforeValidator(one_of(*CREDENTIAL_TYPES)),
    _enum_schema(*CREDENTIAL_TYPES),
]
VirtualizationProtocol = Annotated[
    str, BeforeValidator(one_of("Vxlan", "Nvgre")), _enum_schema("Vxlan", "Nvgre")
]
VlanId = Annotated[int, BeforeValidator(int_in(0, VLAN_MAX)), int_schema(0, VLAN_MAX)]
AclPriority = Annotated[
    int,
    BeforeValidator(int_in(ACL_PRIORITY_MIN, ACL_PRIORITY_MAX)),
    int_schema(ACL_PRIORITY_MIN, ACL_PRIORITY_MAX),
]
Vsid = Annotated[int, BeforeValidator(int_in(VSID_MIN, VSID_MAX)), int_schema(VSID_MIN, VSID_MAX)]


class Properties(BaseModel):
    """Base of every properties model: case-insensitive names, extras kept."""

    model_config = ConfigDict(extra="allow")
    READ_ONLY: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _canonical_names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = {name.casefold(): name for name in cls.model_fields}
        read_only = {name.casefold() for name in cls.READ_ONLY | COMMON_READ_ONLY}
        out: dict[str, Any] = {}
        for name, value in data.items():
            folded = str(name).casefold()
            if folded not in read_only:
                out[known.get(folded) or str(name)] = value
        return out


COMMON_READ_ONLY = frozenset({"provisioningState", "configurationState"})


class Ref(BaseModel):
    """``{"resourceRef": "/virtualNetworks/x"}``."""

    model_config = ConfigDict(extra="ignore")
    resourceRef: str


class Child(BaseModel):
    """The envelope of a child resource sent inline in its parent."""

    model_config = ConfigDict(extra="ignore")
    resourceId: Annotated[str, WithJsonSchema({"type": "string", "pattern": ID_PATTERN})]
    tags: dict[str, Any] | None = None
    resourceMetadata: dict[str, Any] | None = None
