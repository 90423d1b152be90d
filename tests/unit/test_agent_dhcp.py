"""agent.dhcp: the host's DHCPv4 answers from the NIC's own data."""

from __future__ import annotations

import pytest

from openhnv.agent.dhcp import LEASE_TIME, DhcpConfig, answer
from openhnv.packet.addresses import ip_to_str, mac_to_bytes, mac_to_str
from openhnv.packet.decode import decode
from openhnv.packet.dhcp import (
    ACK,
    BOOTREQUEST,
    DECLINE,
    DISCOVER,
    FLAG_BROADCAST,
    INFORM,
    NAK,
    OFFER,
    OPTION_DNS_SERVERS,
    OPTION_INTERFACE_MTU,
    OPTION_LEASE_TIME,
    OPTION_MESSAGE_TYPE,
    OPTION_REQUESTED_ADDRESS,
    OPTION_ROUTER,
    OPTION_SERVER_ID,
    OPTION_SUBNET_MASK,
    RELEASE,
    REQUEST,
    Dhcp,
    Option,
)
from openhnv.packet.frames import udp_frame
from openhnv.packet.ipv4 import IPv4
from openhnv.packet.udp import Udp

VM_MAC = "00:1d:d8:07:00:11"
ROUTER_MAC = "40:1d:d8:b7:1c:06"
CONFIG = DhcpConfig(
    address="10.1.1.11",
    prefix_length=24,
    server="10.1.1.1",
    server_mac=ROUTER_MAC,
    router="10.1.1.1",
    dns_servers=("10.1.1.53", "192.0.2.53"),
)
MTU = 1450


def client(kind: int, *extra: Option, flags: int = 0, ciaddr: str = "0.0.0.0") -> bytes:
    message = Dhcp(
        BOOTREQUEST, 0xBEEF, mac_to_bytes(VM_MAC), ((OPTION_MESSAGE_TYPE, bytes((kind,))), *extra),
        flags=flags, ciaddr=bytes(int(x) for x in ciaddr.split(".")),
    )  # fmt: skip
    dst = "255.255.255.255" if ciaddr == "0.0.0.0" else "10.1.1.1"
    return udp_frame(src_mac=VM_MAC, dst_mac="ff:ff:ff:ff:ff:ff", src_ip=ciaddr, dst_ip=dst,
                     src_port=68, dst_port=67, payload=message.pack())  # fmt: skip


def reply(frame: bytes | None) -> tuple[IPv4, Dhcp, str]:
    assert frame is not None
    headers = decode(frame)  # checks every checksum on the way
    ip = next(h for h in headers if isinstance(h, IPv4))
    udp_at = 14 + 20
    assert next(h for h in headers if isinstance(h, Udp)).src_port == 67
    message, _ = Dhcp.parse(frame, udp_at + 8)
    return ip, message, mac_to_str(frame[:6])


def test_a_discover_gets_an_offer_with_everything_the_nic_has() -> None:
    ip, offer, dst_mac = reply(answer(CONFIG, VM_MAC, client(DISCOVER), MTU))
    assert offer.message_type == OFFER
    assert (offer.xid, ip_to_str(offer.yiaddr)) == (0xBEEF, "10.1.1.11")
    assert offer.option(OPTION_SUBNET_MASK) == bytes([255, 255, 255, 0])
    assert offer.option(OPTION_ROUTER) == bytes([10, 1, 1, 1])
    assert offer.option(OPTION_SERVER_ID) == bytes([10, 1, 1, 1])
    assert offer.option(OPTION_DNS_SERVERS) == bytes([10, 1, 1, 53, 192, 0, 2, 53])
    assert offer.option(OPTION_INTERFACE_MTU) == MTU.to_bytes(2, "big")
    assert offer.option(OPTION_LEASE_TIME) == LEASE_TIME.to_bytes(4, "big")
    # unicast to the client's MAC and the offered address, from the distributed router
    assert (dst_mac, ip_to_str(ip.dst), ip_to_str(ip.src)) == (VM_MAC, "10.1.1.11", "10.1.1.1")
    assert mac_to_str(answer(CONFIG, VM_MAC, client(DISCOVER), MTU)[6:12]) == ROUTER_MAC  # type: ignore[index]


def test_a_client_asking_for_broadcast_gets_broadcast() -> None:
    ip, _, dst_mac = reply(answer(CONFIG, VM_MAC, client(DISCOVER, flags=FLAG_BROADCAST), MTU))
    assert (dst_mac, ip_to_str(ip.dst)) == ("ff:ff:ff:ff:ff:ff", "255.255.255.255")


def test_a_request_for_its_address_is_acked_for_another_naked() -> None:
    mine = (OPTION_REQUESTED_ADDRESS, bytes([10, 1, 1, 11]))
    other = (OPTION_REQUESTED_ADDRESS, bytes([10, 1, 1, 99]))
    server = (OPTION_SERVER_ID, bytes([10, 1, 1, 1]))
    _, ack, _ = reply(answer(CONFIG, VM_MAC, client(REQUEST, mine, server), MTU))
    assert (ack.message_type, ip_to_str(ack.yiaddr)) == (ACK, "10.1.1.11")
    ip, nak, dst_mac = reply(answer(CONFIG, VM_MAC, client(REQUEST, other), MTU))
    assert (nak.message_type, ip_to_str(nak.yiaddr)) == (NAK, "0.0.0.0")
    assert nak.option(OPTION_LEASE_TIME) is None
    assert (dst_mac, ip_to_str(ip.dst)) == ("ff:ff:ff:ff:ff:ff", "255.255.255.255")


def test_a_renewal_from_its_address_is_acked_to_that_address() -> None:
    ip, ack, _ = reply(answer(CONFIG, VM_MAC, client(REQUEST, ciaddr="10.1.1.11"), MTU))
    assert ack.message_type == ACK
    assert ip_to_str(ip.dst) == "10.1.1.11"
    _, nak, _ = reply(answer(CONFIG, VM_MAC, client(REQUEST, ciaddr="10.1.1.12"), MTU))
    assert nak.message_type == NAK


def test_an_inform_gets_configuration_without_a_lease() -> None:
    _, ack, _ = reply(answer(CONFIG, VM_MAC, client(INFORM, ciaddr="10.1.1.11"), MTU))
    assert ack.message_type == ACK
    assert ack.option(OPTION_LEASE_TIME) is None
    assert ack.option(OPTION_DNS_SERVERS) is not None


@pytest.mark.parametrize(
    "frame",
    [
        client(RELEASE, ciaddr="10.1.1.11"),
        client(DECLINE),
        client(REQUEST, (OPTION_SERVER_ID, bytes([10, 9, 9, 9]))),  # another server's offer
        client(DISCOVER)[:60],  # truncated
        b"",
    ],
)
def test_silence_for_the_rest(frame: bytes) -> None:
    assert answer(CONFIG, VM_MAC, frame, MTU) is None


def test_a_message_for_another_mac_is_not_answered() -> None:
    assert answer(CONFIG, "00:1d:d8:07:00:99", client(DISCOVER), MTU) is None


def test_an_unrouted_subnet_without_dns_gets_neither_option() -> None:
    bare = DhcpConfig("10.1.1.11", 24, "10.1.1.1", ROUTER_MAC, None)
    _, offer, _ = reply(answer(bare, VM_MAC, client(DISCOVER), MTU))
    assert offer.option(OPTION_ROUTER) is None
    assert offer.option(OPTION_DNS_SERVERS) is None
