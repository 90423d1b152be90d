"""Pydantic models of the resources' ``properties``, with Microsoft's property names.

Microsoft clients send numbers and booleans as strings (``"priority": "100"``,
``"vlanid": "7"``, ``"networkVirtualizationEnabled": "True"``) and property names in
mixed case; the models accept both and dump proper ints, bools and Microsoft's spelling.
Enum values are matched without regard to case and dumped in Microsoft's casing.
Unknown properties are kept (round-tripped); read-only ones are dropped on input.

These models check one field at a time; rules that relate fields or resources live in
``openhnv.controller.northbound.validation``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from openhnv.controller.errors import ApiError, bad_request

VSID_MIN = 4096
VSID_MAX = 2**24 - 2
ACL_PRIORITY_MIN = 100
ACL_PRIORITY_MAX = 65000
VLAN_MAX = 4094
PORT_MAX = 65535
MAC_HEX_DIGITS = 12
ANY = "*"
INTERNET_TAG = "Internet"


def _enum(*values: str) -> Callable[[object], str]:
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
AclProtocol = Annotated[str, BeforeValidator(_enum("All", "TCP", "UDP", "ICMP"))]
AclAction = Annotated[str, BeforeValidator(_enum("Allow", "Deny"))]
AclType = Annotated[str, BeforeValidator(_enum("Inbound", "Outbound"))]
Logging = Annotated[str, BeforeValidator(_enum("Enabled", "Disabled"))]
AllocationMethod = Annotated[str, BeforeValidator(_enum("Static", "Dynamic"))]
CredentialType = Annotated[
    str, BeforeValidator(_enum("X509Certificate", "UsernamePassword", "SnmpCommunityString"))
]
VirtualizationProtocol = Annotated[str, BeforeValidator(_enum("Vxlan", "Nvgre"))]


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


class IpPoolProperties(Properties):
    READ_ONLY = frozenset({"usage"})
    startIpAddress: IpAddress
    endIpAddress: IpAddress


class IpPool(Child):
    properties: IpPoolProperties


class LogicalSubnetProperties(Properties):
    READ_ONLY = frozenset({"ipConfigurations", "usage"})
    addressPrefix: Cidr
    vlanID: int = Field(0, ge=0, le=VLAN_MAX)
    defaultGateways: list[IpAddress] = []
    dnsServers: list[IpAddress] = []
    isPublic: bool = False
    ipPools: list[IpPool] = []


class LogicalSubnet(Child):
    properties: LogicalSubnetProperties


class LogicalNetworkProperties(Properties):
    READ_ONLY = frozenset({"virtualNetworks"})
    networkVirtualizationEnabled: bool = False
    subnets: list[LogicalSubnet] = []


class MacPoolProperties(Properties):
    READ_ONLY = frozenset({"usage"})
    startMacAddress: PoolMac
    endMacAddress: PoolMac


class CredentialProperties(Properties):
    READ_ONLY = frozenset({"networks"})
    type: CredentialType
    userName: str | None = None
    value: str | None = None


class Connection(Properties):
    managementAddresses: list[str] = Field(min_length=1)
    credential: Ref | None = None
    credentialType: str | None = None


class ServerInterfaceProperties(Properties):
    isBMC: bool = False
    logicalSubnets: list[Ref] = []


class ServerInterface(Child):
    properties: ServerInterfaceProperties


class ServerProperties(Properties):
    READ_ONLY = frozenset({"virtualNetworkInterfaces", "providerAddresses"})
    connections: list[Connection] = []
    networkInterfaces: list[ServerInterface] = []
    certificate: str | None = None


class AclRuleProperties(Properties):
    protocol: AclProtocol
    sourcePortRange: PortRange = ANY
    destinationPortRange: PortRange = ANY
    sourceAddressPrefix: AclPrefix = ANY
    destinationAddressPrefix: AclPrefix = ANY
    action: AclAction
    priority: int = Field(ge=ACL_PRIORITY_MIN, le=ACL_PRIORITY_MAX)
    type: AclType
    logging: Logging | None = None


class AclRule(Child):
    properties: AclRuleProperties


class AclProperties(Properties):
    READ_ONLY = frozenset({"ipConfigurations", "subnets", "subnet"})
    aclRules: list[AclRule] = []


class AddressSpace(Properties):
    addressPrefixes: list[Cidr] = Field(min_length=1)


class VirtualSubnetProperties(Properties):
    READ_ONLY = frozenset({"ipConfigurations"})
    addressPrefix: Cidr
    accessControlList: Ref | None = None
    virtualSubnetId: int | None = Field(None, ge=VSID_MIN, le=VSID_MAX)


class VirtualSubnet(Child):
    properties: VirtualSubnetProperties


class VirtualNetworkProperties(Properties):
    READ_ONLY = frozenset({"routingDomainId"})
    addressSpace: AddressSpace
    logicalNetwork: Ref | None = None
    subnets: list[VirtualSubnet] = []


class IpConfigurationProperties(Properties):
    privateIPAddress: IpAddress | None = None
    privateIPAllocationMethod: AllocationMethod | None = None
    subnet: Ref
    accessControlList: Ref | None = None


class IpConfiguration(Child):
    properties: IpConfigurationProperties


class PortSettings(Properties):
    macSpoofingEnabled: Switch = "Disabled"
    arpGuardEnabled: Switch = "Disabled"
    dhcpGuardEnabled: Switch = "Disabled"


class NetworkInterfaceProperties(Properties):
    privateMacAddress: NicMac | None = None
    privateMacAllocationMethod: AllocationMethod | None = None
    ipConfigurations: list[IpConfiguration] = []
    portSettings: PortSettings | None = None
    server: Ref | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_mac(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("privateMacAddress") == "":
            data = {k: v for k, v in data.items() if k != "privateMacAddress"}
        return data


class VirtualNetworkManagerProperties(Properties):
    READ_ONLY = frozenset({"distributedRouterMacAddress"})
    networkVirtualizationProtocol: VirtualizationProtocol = "Vxlan"


MODELS: dict[tuple[str, ...], type[Properties]] = {
    ("logicalNetworks",): LogicalNetworkProperties,
    ("logicalNetworks", "subnets"): LogicalSubnetProperties,
    ("logicalNetworks", "subnets", "ipPools"): IpPoolProperties,
    ("macPools",): MacPoolProperties,
    ("credentials",): CredentialProperties,
    ("servers",): ServerProperties,
    ("servers", "networkInterfaces"): ServerInterfaceProperties,
    ("accessControlLists",): AclProperties,
    ("accessControlLists", "aclRules"): AclRuleProperties,
    ("virtualNetworks",): VirtualNetworkProperties,
    ("virtualNetworks", "subnets"): VirtualSubnetProperties,
    ("networkInterfaces",): NetworkInterfaceProperties,
    ("networkInterfaces", "ipConfigurations"): IpConfigurationProperties,
    ("virtualNetworkManager",): VirtualNetworkManagerProperties,
}


def _location(loc: tuple[int | str, ...], prefix: str) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part in ("str", "int"):
            continue  # pydantic's names for validator steps, not fields
        else:
            out += f".{part}" if out else part
    return out


def parse_properties(
    kind: tuple[str, ...], raw: object, prefix: str = "properties"
) -> dict[str, Any]:
    """Validate ``raw`` as the properties of ``kind``; canonical JSON, or ApiError 400."""
    if not isinstance(raw, dict):
        raise bad_request(prefix, f"must be a JSON object, got {type(raw).__name__}")
    try:
        model = MODELS[kind].model_validate(raw)
    except ValidationError as err:
        raise _as_api_error(err, prefix) from None
    dumped: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return dumped


def _as_api_error(err: ValidationError, prefix: str) -> ApiError:
    first = err.errors()[0]
    where = _location(tuple(first["loc"]), prefix)
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "is required"
    elif first["type"] in ("model_type", "model_attributes_type", "dict_type"):
        message = f"must be a JSON object, got {first.get('input')!r}"
    elif first["type"] not in ("value_error",) and "input" in first:
        message = f"{message}, got {first['input']!r}"
    return bad_request(where, message)
