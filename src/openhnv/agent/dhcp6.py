"""Stateful DHCPv6 answered by the host from the NIC's own data (RFC 8415), as DHCPv4 is
(agent.dhcp).

A VM's DHCPv6 client messages never leave the host: the engine punts them
(``Punt(reason="dhcp6")``) and the agent answers here with what the Network Controller
holds for the NIC: an IA_NA with its IPv6 address (one address, fixed by the controller:
every IA the client asks for gets it), the NIC's IPv6 ``dnsServers`` (option 23) and
the distributed router's DUID-LL as Server Identifier, from the router's link-local
address and MAC to the client's link-local address. The prefix length is not DHCPv6's
to give: the RA's on-link prefix (agent.ndp, M and O set) tells it.

- Solicit: Advertise (Preference 255: the client need not wait for other servers), or
  Reply with Rapid Commit when the client asks for it.
- Request, Renew (for this server), Rebind: Reply with the lease.
- Confirm: Reply with Success when every address is on the subnet, else NotOnLink.
- Information-Request: Reply with the DNS servers, no lease.
- Release, Decline (for this server): Reply with Success (§18.3.7, §18.3.8); the NIC's
  address stays the NIC's.
- A message without Client Identifier, one naming another server (or one that must not
  name a server and does), a server message or a malformed one: silence.

Pure functions: the agent sends what ``answer`` returns.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from openhnv.agent.ndp import router_link_local
from openhnv.packet.addresses import mac_to_bytes
from openhnv.packet.dhcp6 import (
    ADVERTISE,
    CLIENT_TYPES,
    CONFIRM,
    DECLINE,
    DHCP6_CLIENT_PORT,
    DHCP6_SERVER_PORT,
    INFORMATION_REQUEST,
    MAX_PREFERENCE,
    OPTION_CLIENTID,
    OPTION_DNS_SERVERS,
    OPTION_IA_NA,
    OPTION_IAADDR,
    OPTION_PREFERENCE,
    OPTION_RAPID_COMMIT,
    OPTION_SERVERID,
    REBIND,
    RELEASE,
    RENEW,
    REPLY,
    REQUEST,
    SOLICIT,
    STATUS_NOT_ON_LINK,
    STATUS_SUCCESS,
    Dhcp6,
    IaAddress,
    IaNa,
    Option6,
    addresses_option,
    duid_ll,
    status_option,
)
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import ETHERTYPE_IPV6, Ethernet
from openhnv.packet.frames import udp_frame
from openhnv.packet.ipv4 import PROTO_UDP
from openhnv.packet.ipv6 import IPv6
from openhnv.packet.udp import Udp

VALID_LIFETIME = 86_400  # seconds: the address is fixed by the controller, renewals cheap
PREFERRED_LIFETIME = VALID_LIFETIME // 2
RENEW_TIME = PREFERRED_LIFETIME // 2  # T1: 0.5 x preferred (§21.4)
REBIND_TIME = PREFERRED_LIFETIME * 4 // 5  # T2: 0.8 x preferred
REPLY_HOP_LIMIT = 255  # a link-local answer: any value reaches; 255 as ND uses
_NOT_MINE = {REQUEST, RENEW, RELEASE, DECLINE}  # must name this server (§16)
_NO_SERVER = {SOLICIT, CONFIRM, REBIND}  # must name no server (§16)
_LEASES = {SOLICIT, REQUEST, RENEW, REBIND}


@dataclass(frozen=True, slots=True)
class Dhcp6Config:
    """What a port's DHCPv6 answers hold (from its rows)."""

    address: str  # the NIC's IPv6 customer address
    prefix: str  # its subnet's on-link prefix (Confirm), e.g. fd00:7::/64
    server_mac: str  # the distributed router's MAC: source MAC, link-local, DUID
    dns_servers: tuple[str, ...] = ()


def answer(config: Dhcp6Config, frame: bytes) -> bytes | None:
    """The Ethernet frame answering the DHCPv6 client message ``frame``, or None (never
    raises)."""
    try:
        found = _request(frame)
        if found is None:
            return None
        ethernet, ip, message = found
        options = _answer_options(config, message)
    except PacketError:
        return None
    if options is None:
        return None
    kind = REPLY
    if message.msg_type == SOLICIT and message.option(OPTION_RAPID_COMMIT) is None:
        kind = ADVERTISE
    reply = Dhcp6(kind, message.transaction_id, tuple(options))
    return udp_frame(
        src_mac=config.server_mac,
        dst_mac=ethernet.src,
        src_ip=router_link_local(config.server_mac),
        dst_ip=ip.src,
        src_port=DHCP6_SERVER_PORT,
        dst_port=DHCP6_CLIENT_PORT,
        payload=reply.pack(),
        ttl=REPLY_HOP_LIMIT,
        vlan_id=ethernet.vlan_id,
    )


def _request(frame: bytes) -> tuple[Ethernet, IPv6, Dhcp6] | None:
    ethernet, at = Ethernet.parse(frame)
    if ethernet.ethertype != ETHERTYPE_IPV6:
        return None
    ip, at = IPv6.parse(frame, at)
    if ip.next_header != PROTO_UDP or not ipaddress.IPv6Address(ip.src).is_link_local:
        return None  # §13.1: a client sends from its link-local address
    end = at + ip.payload_length
    udp_at = at
    udp, at = Udp.parse(frame[:end], at, ip.src, ip.dst, ip.payload_length)
    if udp.dst_port != DHCP6_SERVER_PORT:
        return None
    message = Dhcp6.parse(frame[: udp_at + udp.length], at)
    return (ethernet, ip, message) if message.msg_type in CLIENT_TYPES else None


def _answer_options(config: Dhcp6Config, message: Dhcp6) -> list[Option6] | None:
    """The reply's options, or None when the message gets silence (§16)."""
    kind = message.msg_type
    client = message.option(OPTION_CLIENTID)
    server = message.option(OPTION_SERVERID)
    ours = duid_ll(mac_to_bytes(config.server_mac))
    if client is None and kind != INFORMATION_REQUEST:
        return None
    if (kind in _NOT_MINE and server != ours) or (kind in _NO_SERVER and server is not None):
        return None
    if kind == INFORMATION_REQUEST and server is not None and server != ours:
        return None
    options: list[Option6] = [(OPTION_SERVERID, ours)]
    if client is not None:
        options.append((OPTION_CLIENTID, client))
    if kind == SOLICIT and message.option(OPTION_RAPID_COMMIT) is not None:
        options.append((OPTION_RAPID_COMMIT, b""))
    elif kind == SOLICIT:  # the only server on the link: no need to wait for others
        options.append((OPTION_PREFERENCE, bytes((MAX_PREFERENCE,))))
    if kind in _LEASES:
        options += [(OPTION_IA_NA, _lease(config, IaNa.parse(v)).pack()) for v in
                    message.all(OPTION_IA_NA)]  # fmt: skip
    elif kind == CONFIRM:
        options.append(_confirm(config, message))
    elif kind in (RELEASE, DECLINE):
        return [*options, status_option(STATUS_SUCCESS)]
    if config.dns_servers:
        dns = [ipaddress.IPv6Address(a).packed for a in config.dns_servers]
        options.append(addresses_option(OPTION_DNS_SERVERS, dns))
    return options


def _lease(config: Dhcp6Config, asked: IaNa) -> IaNa:
    """The client's IA (its IAID) holding the NIC's address."""
    address = IaAddress(
        ipaddress.IPv6Address(config.address).packed, PREFERRED_LIFETIME, VALID_LIFETIME
    )
    return IaNa(asked.iaid, RENEW_TIME, REBIND_TIME, ((OPTION_IAADDR, address.pack()),))


def _confirm(config: Dhcp6Config, message: Dhcp6) -> Option6:
    """§18.3.3: Success when every address the client holds is on the subnet."""
    prefix = ipaddress.IPv6Network(config.prefix)
    held = [a for v in message.all(OPTION_IA_NA) for a in IaNa.parse(v).addresses()]
    on_link = all(ipaddress.IPv6Address(a.address) in prefix for a in held)
    return status_option(STATUS_SUCCESS if on_link else STATUS_NOT_ON_LINK)
