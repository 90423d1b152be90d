"""The building blocks of the northbound property models: value types and base classes.

Microsoft clients send numbers and booleans as strings (``"priority": "100"``,
``"vlanid": "7"``, ``"networkVirtualizationEnabled": "True"``) and property names in
mixed case; ``Properties`` accepts both and dumps proper ints, bools and Microsoft's
spelling. Enum values (``one_of``) are matched without regard to case and dumped in
Microsoft's casing. Unknown properties are kept (round-tripped); read-only ones are
dropped on input. The resources' models are in ``models`` and ``gateway_models``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator

VSID_MIN = 4096
VSID_MAX = 2**24 - 2
ACL_PRIORITY_MIN = 100
ACL_PRIORITY_MAX = 65000
VLAN_MAX = 4094
PORT_MAX = 65535
MAC_HEX_DIGITS = 12
ANY = "*"
INTERNET_TAG = "Internet"


def one_of(*values: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        if isinstance(value, str):
            for candidate in values:
                if candidate.casefold() == value.strip().casefold():
                    return candidate
        raise ValueError(f"{value!r} is not one of {', '.join(values)}")

    return check


def _ip(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an IP address")
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def _cidr(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a CIDR prefix")
    try:
        return str(ipaddress.ip_network(value.strip(), strict=True))
    except ValueError:
        try:
            loose = ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not a CIDR prefix like 10.1.1.0/24") from None
        raise ValueError(f"{value} has host bits set; the prefix is {loose}") from None


def _acl_prefix(value: object) -> str:
    if isinstance(value, str):
        text = value.strip()
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
    text = str(value).strip() if isinstance(value, str | int) else None
    if text == ANY:
        return ANY
    if text:
        low, _, high = text.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            lo, hi = int(low), int(high or low)
            if lo <= hi <= PORT_MAX:
                return text
    raise ValueError(f"{value!r} is not a port range like '80', '1024-65535' or '*'")


def mac_digits(value: object) -> str:
    """``"00-1d-d8-07-00-01"`` -> ``"001DD8070001"``; ValueError when not a MAC."""
    if isinstance(value, str):
        digits = value.strip().replace("-", "").replace(":", "").upper()
        if len(digits) == MAC_HEX_DIGITS and all(c in "0123456789ABCDEF" for c in digits):
            return digits
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


def _switch(value: object) -> str:
    if isinstance(value, bool):
        return "Enabled" if value else "Disabled"
    if isinstance(value, str):
        text = value.strip().casefold()
        if text in ("enabled", "true"):
            return "Enabled"
        if text in ("disabled", "false"):
            return "Disabled"
    raise ValueError(f"{value!r} is not one of Enabled, Disabled")


IpAddress = Annotated[str, BeforeValidator(_ip)]
Cidr = Annotated[str, BeforeValidator(_cidr)]
AclPrefix = Annotated[str, BeforeValidator(_acl_prefix)]
PortRange = Annotated[str, BeforeValidator(_port_range)]
NicMac = Annotated[str, BeforeValidator(_unicast_mac)]
PoolMac = Annotated[str, BeforeValidator(_pool_mac)]
Switch = Annotated[str, BeforeValidator(_switch)]
AclProtocol = Annotated[str, BeforeValidator(one_of("All", "TCP", "UDP", "ICMP"))]
AclAction = Annotated[str, BeforeValidator(one_of("Allow", "Deny"))]
AclType = Annotated[str, BeforeValidator(one_of("Inbound", "Outbound"))]
Logging = Annotated[str, BeforeValidator(one_of("Enabled", "Disabled"))]
AllocationMethod = Annotated[str, BeforeValidator(one_of("Static", "Dynamic"))]
CredentialType = Annotated[
    str, BeforeValidator(one_of("X509Certificate", "UsernamePassword", "SnmpCommunityString"))
]
VirtualizationProtocol = Annotated[str, BeforeValidator(one_of("Vxlan", "Nvgre"))]


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
    resourceId: str
    tags: dict[str, Any] | None = None
