"""Property models of the gateway resources, in Microsoft's shapes (docs/api.md, "Gateways").

``gatewayPools``, ``gateways``, ``virtualGateways`` with their ``networkConnections``, and
``publicIPAddresses``. Fields Microsoft's Network Controller has keep its names and
values; openhnv's extensions (a gateway's ``server`` and ``externalInterfaces``, a
connection's ``publicIPAddress`` and ``natConfiguration``, the ``Nat`` connection type,
certificate references in ``ipSecConfiguration``) are marked in docs/api.md. Each model
checks one field at a time; ``gateway_rules`` holds the rules across fields and resources.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from openhnv.controller.northbound.model_base import (
    COUNT_MAX,
    AllocationMethod,
    Child,
    Cidr,
    Count,
    IpAddress,
    Properties,
    Ref,
    int_in,
    int_schema,
    one_of,
)

PORT_MIN, PORT_MAX = 1, 65535
METRIC_MAX = 2**31 - 1
IDLE_TIMEOUT_MIN, IDLE_TIMEOUT_MAX = 4, 30  # minutes, as Microsoft's publicIPAddresses
SA_LIFETIME_MIN = 300
IPV6_PREFIX_MAX = 128
DEFAULT_METRIC = 10

GatewayType = Annotated[str, BeforeValidator(one_of("All", "S2sIPsec", "S2sGre", "Forwarding"))]
ConnectionType = Annotated[str, BeforeValidator(one_of("IPSec", "GRE", "L3", "Nat"))]
IpVersion = Annotated[str, BeforeValidator(one_of("IPv4", "IPv6"))]
RoutingType = Annotated[str, BeforeValidator(one_of("Static", "Dynamic"))]
AuthenticationMethod = Annotated[str, BeforeValidator(one_of("PSK", "Certificates"))]
NatProtocol = Annotated[str, BeforeValidator(one_of("TCP", "UDP"))]
DhGroup = Annotated[
    str,
    BeforeValidator(one_of("None", "Group1", "Group2", "Group14", "ECP256", "ECP384", "Group24")),
]
Integrity = Annotated[str, BeforeValidator(one_of("MD5", "SHA1", "SHA256", "SHA384"))]
Encryption = Annotated[
    str,
    BeforeValidator(
        one_of("DES", "DES3", "AES128", "AES192", "AES256", "GCMAES128", "GCMAES192", "GCMAES256")
    ),
]
Pfs = Annotated[
    str,
    BeforeValidator(
        one_of("None", "PFS1", "PFS2", "PFS2048", "ECP256", "ECP384", "PFSMM", "PFS24")
    ),
]
AuthTransform = Annotated[
    str,
    BeforeValidator(
        one_of("MD596", "SHA196", "SHA256128", "GCMAES128", "GCMAES192", "GCMAES256", "None")
    ),
]
CipherTransform = Annotated[
    str,
    BeforeValidator(
        one_of(
            "DES", "DES3", "AES128", "AES192", "AES256",
            "GCMAES128", "GCMAES192", "GCMAES256", "None",
        )
    ),
]  # fmt: skip
IdleTimeout = Annotated[
    int,
    BeforeValidator(int_in(IDLE_TIMEOUT_MIN, IDLE_TIMEOUT_MAX)),
    int_schema(IDLE_TIMEOUT_MIN, IDLE_TIMEOUT_MAX),
]
Metric = Annotated[int, BeforeValidator(int_in(0, METRIC_MAX)), int_schema(0, METRIC_MAX)]
PrefixLength = Annotated[
    int, BeforeValidator(int_in(0, IPV6_PREFIX_MAX)), int_schema(0, IPV6_PREFIX_MAX)
]
SaLifetime = Annotated[
    int, BeforeValidator(int_in(SA_LIFETIME_MIN, COUNT_MAX)), int_schema(SA_LIFETIME_MIN, COUNT_MAX)
]
Port = Annotated[int, BeforeValidator(int_in(PORT_MIN, PORT_MAX)), int_schema(PORT_MIN, PORT_MAX)]


class PublicIpAddressProperties(Properties):
    """An address on the Internet side (a logical subnet with ``isPublic``)."""

    READ_ONLY = frozenset({"ipConfiguration", "counters"})
    ipAddress: IpAddress | None = None
    publicIPAllocationMethod: AllocationMethod | None = None
    publicIPAddressVersion: IpVersion = "IPv4"
    idleTimeoutInMinutes: IdleTimeout = IDLE_TIMEOUT_MIN
    logicalSubnet: Ref | None = None  # openhnv: where the address lives (filled when absent)


class GatewayPoolIpConfiguration(Properties):
    publicIPAddresses: list[Ref] = []
    greVipSubnets: list[Ref] = []


class GatewayPoolProperties(Properties):
    READ_ONLY = frozenset({"gateways", "virtualGateways"})
    type: GatewayType = "All"
    redundantGatewayCount: Count = 0
    gatewayCapacityKiloBitsPerSecond: Count | None = None
    ipConfiguration: GatewayPoolIpConfiguration | None = None


class GatewayProperties(Properties):
    """A gateway: a host (server) of the pool, with legs on external networks."""

    READ_ONLY = frozenset(
        {"virtualGateways", "state", "healthState", "availableCapacity", "connections"}
    )
    pool: Ref
    type: GatewayType = "All"
    server: Ref  # openhnv: the host that runs `hnv host --role gateway`
    externalInterfaces: list[Ref] = []  # openhnv: its physical NICs on external networks
    totalCapacity: Count | None = None


class RouteProperties(Properties):
    """One prefix a connection reaches (Microsoft's ``routes[]`` of a networkConnection)."""

    destinationPrefix: Cidr
    metric: Metric = DEFAULT_METRIC


class InterfaceAddress(Properties):
    ipAddress: IpAddress
    prefixLength: PrefixLength


class L3Configuration(Properties):
    vlanSubnet: Ref


class MainMode(Properties):
    diffieHellmanGroup: DhGroup = "Group14"
    integrityAlgorithm: Integrity = "SHA256"
    encryptionAlgorithm: Encryption = "AES256"
    saLifeTimeSeconds: SaLifetime = 28800
    saLifeTimeKiloBytes: Count | None = None


class QuickMode(Properties):
    perfectForwardSecrecy: Pfs = "None"
    authenticationTransformationConstant: AuthTransform = "SHA256128"
    cipherTransformationConstant: CipherTransform = "AES256"
    saLifeTimeSeconds: SaLifetime = 3600
    idleDisconnectSeconds: Count = 500
    saLifeTimeKiloBytes: Count | None = None


class IpSecConfiguration(Properties):
    authenticationMethod: AuthenticationMethod = "PSK"
    sharedSecret: str | None = None  # write-only
    mainMode: MainMode | None = None  # absent: the defaults below (filled on PUT)
    quickMode: QuickMode | None = None
    localCertificate: Ref | None = None  # openhnv: credentials with PEM certificate + key
    peerCertificateAuthority: Ref | None = None  # openhnv: credentials with the peer's CA
    peerId: str | None = None  # openhnv: the peer's IKE identity (default its address)


class InboundNatRule(Properties):
    protocol: NatProtocol
    frontendPort: Port
    backendIPAddress: IpAddress
    backendPort: Port


class NatConfiguration(Properties):
    inboundNatRules: list[InboundNatRule] = []


class NetworkConnectionProperties(Properties):
    READ_ONLY = frozenset(
        {
            "connectionState",
            "connectionStatus",
            "connectionUptimeInSeconds",
            "sourceIPAddress",
            "statistics",
            "unreachabilityReason",
        }
    )
    connectionType: ConnectionType
    outboundKiloBitsPerSecond: Count | None = None
    inboundKiloBitsPerSecond: Count | None = None
    routes: list[RouteProperties] = []
    ipAddresses: list[InterfaceAddress] = []
    peerIPAddresses: list[IpAddress] = []
    destinationIPAddress: IpAddress | None = None
    l3Configuration: L3Configuration | None = None
    ipSecConfiguration: IpSecConfiguration | None = None
    publicIPAddress: Ref | None = None  # openhnv: the compartment's Internet address
    natConfiguration: NatConfiguration | None = None  # openhnv: Nat connections


class NetworkConnection(Child):
    properties: NetworkConnectionProperties


class VirtualGatewayProperties(Properties):
    READ_ONLY = frozenset({"compartment"})
    gatewayPool: Ref | None = None
    gatewayPools: list[Ref] | None = None  # the older, plural spelling
    gatewaySubnets: list[Ref] = Field(min_length=1)
    routingType: RoutingType | None = None
    networkConnections: list[NetworkConnection] = []
    bgpRouters: list[Any] | None = None


GATEWAY_MODELS: dict[tuple[str, ...], type[Properties]] = {
    ("publicIPAddresses",): PublicIpAddressProperties,
    ("gatewayPools",): GatewayPoolProperties,
    ("gateways",): GatewayProperties,
    ("virtualGateways",): VirtualGatewayProperties,
    ("virtualGateways", "networkConnections"): NetworkConnectionProperties,
}
