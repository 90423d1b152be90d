"""DHCPv6 client messages answered from the NIC's data: messages built with scapy
(explicit MACs, never sent), answers decoded by scapy as an independent reader."""

from __future__ import annotations

from typing import Any

import pytest
from scapy.layers.dhcp6 import (
    DUID_LL,
    DHCP6_Advertise,
    DHCP6_Confirm,
    DHCP6_InfoRequest,
    DHCP6_Rebind,
    DHCP6_Release,
    DHCP6_Renew,
    DHCP6_Reply,
    DHCP6_Request,
    DHCP6_Solicit,
    DHCP6OptClientId,
    DHCP6OptDNSServers,
    DHCP6OptIA_NA,
    DHCP6OptIAAddress,
    DHCP6OptPref,
    DHCP6OptRapidCommit,
    DHCP6OptServerId,
    DHCP6OptStatusCode,
)
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from openhnv.agent.dhcp6 import (
    PREFERRED_LIFETIME,
    REBIND_TIME,
    RENEW_TIME,
    VALID_LIFETIME,
    Dhcp6Config,
    answer,
)
from openhnv.agent.ndp import router_link_local

ROUTER_MAC = "40:1d:d8:b7:1c:06"
VM_MAC = "00:1d:d8:07:00:11"
VM_LL = "fe80::21d:d8ff:fe07:11"
CONFIG = Dhcp6Config("fd00:7::11", "fd00:7::/64", ROUTER_MAC, ("fd00:53::53", "fd00:53::54"))
CLIENT_DUID = DUID_LL(lladdr=VM_MAC)
OURS = DHCP6OptServerId(duid=DUID_LL(lladdr=ROUTER_MAC))
IAID = 0x0AB1


def client(message: Any, src: str = VM_LL, sport: int = 546) -> bytes:
    frame = (
        Ether(src=VM_MAC, dst="33:33:00:01:00:02")
        / IPv6(src=src, dst="ff02::1:2", hlim=1)
        / UDP(sport=sport, dport=547)
        / message
    )
    return bytes(frame)


def with_ia(message: Any) -> Any:
    return message / DHCP6OptClientId(duid=CLIENT_DUID) / DHCP6OptIA_NA(iaid=IAID)


def decoded(frame: bytes | None) -> Any:
    assert frame is not None
    return Ether(frame)


def leased(reply: Any) -> None:
    assert (reply.src, reply.dst) == (ROUTER_MAC, VM_MAC)
    assert (reply[IPv6].src, reply[IPv6].dst) == (router_link_local(ROUTER_MAC), VM_LL)
    assert (reply[UDP].sport, reply[UDP].dport) == (547, 546)
    assert reply[DHCP6OptServerId].duid.lladdr == ROUTER_MAC
    assert reply[DHCP6OptClientId].duid.lladdr == VM_MAC
    ia = reply[DHCP6OptIA_NA]
    assert (ia.iaid, ia.T1, ia.T2) == (IAID, RENEW_TIME, REBIND_TIME)
    address = reply[DHCP6OptIAAddress]
    assert (address.addr, address.preflft, address.validlft) == (
        "fd00:7::11",
        PREFERRED_LIFETIME,
        VALID_LIFETIME,
    )
    assert reply[DHCP6OptDNSServers].dnsservers == ["fd00:53::53", "fd00:53::54"]


def test_a_solicit_gets_an_advertise_with_the_nics_address_and_dns() -> None:
    reply = decoded(answer(CONFIG, client(with_ia(DHCP6_Solicit(trid=0x123456)))))
    assert reply.haslayer(DHCP6_Advertise)
    assert reply[DHCP6_Advertise].trid == 0x123456
    assert reply[DHCP6OptPref].prefval == 255  # the only server: taken at once
    leased(reply)


def test_a_rapid_commit_solicit_gets_a_reply() -> None:
    message = DHCP6_Solicit(trid=7) / DHCP6OptRapidCommit()
    reply = decoded(answer(CONFIG, client(with_ia(message))))
    assert reply.haslayer(DHCP6_Reply)
    assert reply.haslayer(DHCP6OptRapidCommit)
    leased(reply)


@pytest.mark.parametrize("kind", [DHCP6_Request, DHCP6_Renew])
def test_a_request_or_renew_for_this_server_gets_a_reply(kind: Any) -> None:
    reply = decoded(answer(CONFIG, client(with_ia(kind(trid=9) / OURS))))
    assert reply[DHCP6_Reply].trid == 9
    leased(reply)


def test_a_rebind_gets_a_reply() -> None:
    leased(decoded(answer(CONFIG, client(with_ia(DHCP6_Rebind(trid=3))))))


def test_a_confirm_says_whether_the_addresses_are_on_link() -> None:
    def confirm(address: str) -> Any:
        ia = DHCP6OptIA_NA(iaid=IAID, ianaopts=[DHCP6OptIAAddress(addr=address)])
        message = DHCP6_Confirm(trid=5) / DHCP6OptClientId(duid=CLIENT_DUID) / ia
        return decoded(answer(CONFIG, client(message)))[DHCP6OptStatusCode].statuscode

    assert (confirm("fd00:7::11"), confirm("fd00:9::11")) == (0, 4)


def test_a_release_gets_success_an_information_request_the_dns() -> None:
    reply = decoded(answer(CONFIG, client(with_ia(DHCP6_Release(trid=1) / OURS))))
    assert reply[DHCP6OptStatusCode].statuscode == 0
    assert not reply.haslayer(DHCP6OptIA_NA)
    info = decoded(answer(CONFIG, client(DHCP6_InfoRequest(trid=2))))
    assert info[DHCP6OptDNSServers].dnsservers == ["fd00:53::53", "fd00:53::54"]
    assert not info.haslayer(DHCP6OptIA_NA)


OTHER = DHCP6OptServerId(duid=DUID_LL(lladdr="02:00:00:00:00:99"))


@pytest.mark.parametrize(
    "frame",
    [
        client(DHCP6_Solicit(trid=1) / DHCP6OptIA_NA(iaid=IAID)),  # no client identifier
        client(with_ia(DHCP6_Request(trid=1))),  # no server identifier
        client(with_ia(DHCP6_Request(trid=1) / OTHER)),  # another server's
        client(with_ia(DHCP6_Solicit(trid=1) / OURS)),  # a solicit names no server
        client(with_ia(DHCP6_Advertise(trid=1))),  # a server message
        client(with_ia(DHCP6_Solicit(trid=1)), src="fd00:7::11"),  # not link-local
        client(with_ia(DHCP6_Solicit(trid=1)), sport=999)[:-3],  # truncated
        client(b"\x01\x00\x00\x01\x00\x01\x00\x40ab"),  # an option past the end
        client(b"\x01\x00"),  # shorter than a header
        bytes(Ether(src=VM_MAC, dst="ff:ff:ff:ff:ff:ff") / (b"\x00" * 40)),  # not IPv6
    ],
)
def test_silence_for_the_rest(frame: bytes) -> None:
    assert answer(CONFIG, frame) is None


def test_without_dns_servers_option_23_is_left_out() -> None:
    config = Dhcp6Config("fd00:7::11", "fd00:7::/64", ROUTER_MAC)
    reply = decoded(answer(config, client(with_ia(DHCP6_Solicit(trid=1)))))
    assert not reply.haslayer(DHCP6OptDNSServers)
    assert reply[DHCP6OptIAAddress].addr == "fd00:7::11"
