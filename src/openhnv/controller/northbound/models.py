"""Pydantic models of the HNV resources' ``properties``, with Microsoft's property names.

Microsoft clients send numbers and booleans as strings (``"priority": "100"``,
``"vlanid": "7"``, ``"networkVirtualizationEnabled": "True"``) and property names in
mixed case; the models accept both and dump proper ints, bools and Microsoft's spelling.
Enum values are matched without regard to case and dumped in Microsoft's casing.
Unknown properties are kept (round-tripped); read-only ones are dropped on input.

These models check one field at a time; rules that relate fields or resources live in
``openhnv.controller.northbound.validation``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError, model_validator

from openhnv.controller.errors import ApiError, bad_request
from openhnv.controller.northbound.gateway_models import GATEWAY_MODELS
from openhnv.controller.northbound.model_base import (
    ANY,
    INTERNET_TAG,
    MAC_HEX_DIGITS,
    PORT_MAX,
    VSID_MAX,
    VSID_MIN,
    AclAction,
    AclPrefix,
    AclPriority,
    AclProtocol,
    AclType,
    AllocationMethod,
    Child,
    Cidr,
    CredentialType,
    Flag,
    IpAddress,
    IpVersion,
    Logging,
    Mbps,
    NicMac,
    PoolMac,
    PortRange,
    Properties,
    Ref,
    Switch,
    VirtualizationProtocol,
    VlanId,
    Vsid,
    mac_dashed,
    mac_digits,
)
from openhnv.controller.northbound.unimplemented import gateway_on_virtual_server

__all__ = [
    "ANY",
    "INTERNET_TAG",
    "MAC_HEX_DIGITS",
    "MODELS",
    "PORT_MAX",
    "VSID_MAX",
    "VSID_MIN",
    "mac_dashed",
    "mac_digits",
    "parse_properties",
]


class IpPoolProperties(Properties):
    READ_ONLY = frozenset({"usage"})
    startIpAddress: IpAddress
    endIpAddress: IpAddress


class IpPool(Child):
    properties: IpPoolProperties


class LogicalSubnetProperties(Properties):
    READ_ONLY = frozenset({"ipConfigurations", "usage"})
    addressPrefix: Cidr
    vlanID: VlanId = 0
    defaultGateways: list[IpAddress] = []
    dnsServers: list[IpAddress] = []
    isPublic: Flag = False
    ipPools: list[IpPool] = []


class LogicalSubnet(Child):
    properties: LogicalSubnetProperties


class LogicalNetworkProperties(Properties):
    READ_ONLY = frozenset({"virtualNetworks"})
    networkVirtualizationEnabled: Flag = False
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
    port: int | None = Field(None, ge=1, le=PORT_MAX)  # the host agent's OVSDB port


class ServerInterfaceProperties(Properties):
    isBMC: Flag = False
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
    priority: AclPriority
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
    # dual stack: every prefix of the subnet (addressPrefix among them), one per family
    addressPrefixes: list[Cidr] | None = Field(None, min_length=1)
    accessControlList: Ref | None = None
    virtualSubnetId: Vsid | None = None


class VirtualSubnet(Child):
    properties: VirtualSubnetProperties


class VirtualNetworkProperties(Properties):
    READ_ONLY = frozenset({"routingDomainId"})
    addressSpace: AddressSpace
    logicalNetwork: Ref | None = None
    subnets: list[VirtualSubnet] = []


class IpConfigurationProperties(Properties):
    privateIPAddress: IpAddress | None = None
    privateIPAddressVersion: IpVersion | None = None  # IPv4 unless told (or the address says)
    privateIPAllocationMethod: AllocationMethod | None = None
    subnet: Ref
    accessControlList: Ref | None = None
    publicIPAddress: Ref | None = None


class IpConfiguration(Child):
    properties: IpConfigurationProperties


class QosSettings(Properties):
    """NC's per-port bandwidth settings (docs/api.md, "QoS"); a cap of 0 is none."""

    outboundMaximumMbps: Mbps = 0  # VM -> network
    inboundMaximumMbps: Mbps = 0  # network -> VM
    outboundReservedValue: Mbps = 0  # a minimum share, Mbit/s (absolute mode), <= the cap
    enableHardwareLimits: Flag = False  # only false: no NIC offload to give caps to


class PortSettings(Properties):
    macSpoofingEnabled: Switch = "Disabled"
    arpGuardEnabled: Switch = "Disabled"
    dhcpGuardEnabled: Switch = "Disabled"
    qosSettings: QosSettings | None = None


class DnsSettings(Properties):
    dnsServers: list[IpAddress] = []  # handed to the VM by the host's DHCP responder


class NetworkInterfaceProperties(Properties):
    privateMacAddress: NicMac | None = None
    privateMacAllocationMethod: AllocationMethod | None = None
    ipConfigurations: list[IpConfiguration] = []
    portSettings: PortSettings | None = None
    dnsSettings: DnsSettings | None = None
    server: Ref | None = None
    vtepAddress: IpAddress | None = None  # openhnv: the NIC is behind this hardware VTEP

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
    **GATEWAY_MODELS,
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
    if kind == ("gateways",):
        missing = gateway_on_virtual_server(raw)
        if missing is not None:
            raise missing
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
