"""The DHCPv6 codec: packed messages read back by scapy (an independent decoder) and by
the codec itself; malformed options refused."""

from __future__ import annotations

import pytest
from scapy.layers.dhcp6 import (
    DHCP6_Reply,
    DHCP6_Solicit,
    DHCP6OptClientId,
    DHCP6OptIA_NA,
    DHCP6OptIAAddress,
    DHCP6OptServerId,
    DHCP6OptStatusCode,
)

from openhnv.packet.addresses import mac_to_bytes
from openhnv.packet.dhcp6 import (
    OPTION_CLIENTID,
    OPTION_IA_NA,
    OPTION_IAADDR,
    OPTION_SERVERID,
    REPLY,
    SOLICIT,
    STATUS_NOT_ON_LINK,
    Dhcp6,
    IaAddress,
    IaNa,
    duid_ll,
    status_of,
    status_option,
)
from openhnv.packet.errors import PacketError

MAC = "40:1d:d8:b7:1c:06"
ADDRESS = bytes.fromhex("fd000007000000000000000000000011")


def test_a_packed_reply_reads_the_same_in_scapy_and_back() -> None:
    address = IaAddress(ADDRESS, 100, 200, (status_option(0, "ok"),))
    ia = IaNa(7, 50, 80, ((OPTION_IAADDR, address.pack()),))
    options = ((OPTION_SERVERID, duid_ll(mac_to_bytes(MAC))), (OPTION_IA_NA, ia.pack()))
    message = Dhcp6(REPLY, 0xABCDEF, options)
    wire = message.pack()
    seen = DHCP6_Reply(wire)
    assert seen.trid == 0xABCDEF
    assert seen[DHCP6OptServerId].duid.lladdr == MAC
    assert (seen[DHCP6OptIA_NA].iaid, seen[DHCP6OptIA_NA].T1, seen[DHCP6OptIA_NA].T2) == (7, 50, 80)
    assert seen[DHCP6OptIAAddress].addr == "fd00:7::11"
    assert seen[DHCP6OptStatusCode].statusmsg == b"ok"
    back = Dhcp6.parse(wire)
    assert back == message
    read_ia = IaNa.parse(back.option(OPTION_IA_NA) or b"")
    assert read_ia.addresses() == (address,)
    assert status_of(read_ia.addresses()[0].options) == 0


def test_a_scapy_solicit_parses() -> None:
    wire = bytes(DHCP6_Solicit(trid=42) / DHCP6OptClientId() / DHCP6OptIA_NA(iaid=3))
    message = Dhcp6.parse(wire)
    assert (message.msg_type, message.transaction_id) == (SOLICIT, 42)
    assert message.option(OPTION_CLIENTID) is not None
    assert IaNa.parse(message.all(OPTION_IA_NA)[0]).iaid == 3
    assert status_of([status_option(STATUS_NOT_ON_LINK)]) == STATUS_NOT_ON_LINK


@pytest.mark.parametrize(
    "wire",
    [
        b"\x01\x00\x00",  # no room for the header
        b"\x01\x00\x00\x01\x00\x01\x00\x09abc",  # an option longer than the message
        b"\x01\x00\x00\x01\x00",  # half an option header
        b"\x00\x00\x00\x01",  # message type 0
    ],
)
def test_malformed_messages_are_refused(wire: bytes) -> None:
    with pytest.raises(PacketError):
        Dhcp6.parse(wire)


def test_bad_fields_are_refused() -> None:
    with pytest.raises(PacketError, match="transaction_id"):
        Dhcp6(SOLICIT, 1 << 24)
    with pytest.raises(PacketError, match="mac"):
        duid_ll(b"\x01")
    with pytest.raises(PacketError):
        IaNa.parse(b"\x00" * 11)
