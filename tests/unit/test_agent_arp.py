"""ARP answered from the mapping store: known CAs and the router, silence otherwise."""

from __future__ import annotations

from scapy.layers.l2 import ARP, Ether

from openhnv.agent.arp import ArpTable, Requester, answer
from openhnv.packet.arp import ARP_REPLY, ARP_REQUEST
from openhnv.packet.frames import arp_frame

ROUTER_MAC = "40:1d:d8:b7:1c:06"
SQL_MAC, WEB_MAC = "00:1d:d8:07:00:11", "00:1d:d8:07:00:12"
TABLE = ArpTable(
    router_mac=ROUTER_MAC,
    customer_macs={(5001, "10.1.1.12"): WEB_MAC, (6001, "10.1.1.13"): "00:1d:d8:07:00:23"},
    gateways={5001: "10.1.1.1"},
)
SQL = Requester(5001, ("10.1.1.11",))


def request(target: str, sender: str = "10.1.1.11", op: int = ARP_REQUEST) -> bytes:
    return arp_frame(
        op=op,
        src_mac=SQL_MAC,
        dst_mac="ff:ff:ff:ff:ff:ff",
        sender_mac=SQL_MAC,
        sender_ip=sender,
        target_mac="00:00:00:00:00:00",
        target_ip=target,
    )


def test_a_known_customer_address_is_answered_with_its_mac() -> None:
    reply = answer(TABLE, SQL, request("10.1.1.12"))
    assert reply is not None
    frame = Ether(reply)  # scapy as the independent decoder
    assert (frame.dst, frame.src) == (SQL_MAC, WEB_MAC)
    arp = frame[ARP]
    assert (arp.op, arp.hwsrc, arp.psrc) == (ARP_REPLY, WEB_MAC, "10.1.1.12")
    assert (arp.hwdst, arp.pdst) == (SQL_MAC, "10.1.1.11")


def test_the_router_address_is_answered_with_the_router_mac() -> None:
    reply = answer(TABLE, SQL, request("10.1.1.1"))
    assert reply is not None
    assert Ether(reply)[ARP].hwsrc == ROUTER_MAC


def test_silence_for_unknown_other_subnet_gratuitous_own_and_replies() -> None:
    assert answer(TABLE, SQL, request("10.1.1.99")) is None  # unknown CA
    assert answer(TABLE, SQL, request("10.1.1.13")) is None  # a CA of another VSID
    assert answer(TABLE, SQL, request("10.1.1.12", sender="10.1.1.12")) is None  # gratuitous
    assert answer(TABLE, SQL, request("10.1.1.11", sender="0.0.0.0")) is None  # own address
    assert answer(TABLE, SQL, request("10.1.1.12", op=ARP_REPLY)) is None
    assert answer(TABLE, SQL, request("10.1.1.12")[:30]) is None  # truncated
    assert answer(ArpTable(), SQL, request("10.1.1.1")) is None  # no router MAC known
