"""vfp.guards: the GUARD layer (ARP guard, DHCP guard): what a guarded VM's frames do."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence

import pytest
from vfp_frames import (
    BROADCAST,
    MAC_A,
    PA_A,
    PA_B,
    VM1,
    VM2,
    VM5,
    arp_frame,
    eth,
    host,
    ipv4,
    udp,
    udp_frame,
)

from openhnv.vfp import commands as c
from openhnv.vfp.emits import Deliver, Drop, Emit, Punt, Transmit
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.guards import ARP_GUARD, DHCP_GUARD, GUARD, guard_layer_commands
from openhnv.vfp.offload import Offload, Withdraw
from openhnv.vfp.policy import ARP_FAMILY, OUT


def guarded(*, arp: bool = True, dhcp: bool = True) -> VfpEngine:
    """Host A with VM1's port guarded."""
    a = host(PA_A, MAC_A)
    a.programming.apply_all(guard_layer_commands("vm1", (VM1[2],), arp_guard=arp, dhcp_guard=dhcp))
    return a


def dhcp_offer(dst_mac: str, dst_ip: str) -> bytes:
    """A DHCP server message from VM1: UDP 67 -> 68."""
    return eth(dst_mac, VM1[1], 0x0800, ipv4(VM1[2], dst_ip, 17, udp(67, 68, b"\x02offer")))


def dhcpv6_advertise() -> bytes:
    """A DHCPv6 server message from VM1: UDP 547 -> 546, link-local to link-local."""
    payload = udp(547, 546, b"\x02adv")
    src = ipaddress.IPv6Address("fe80::1").packed
    dst = ipaddress.IPv6Address("fe80::2").packed
    head = struct.pack("!IHBB16s16s", 6 << 28, len(payload), 17, 255, src, dst)
    return eth(VM5[1], VM1[1], 0x86DD, head + payload)


def dhcpv6_client(src_mac: str, dst_ip: str = "ff02::1:2") -> bytes:
    """A DHCPv6 Solicit: UDP 546 -> 547 from a link-local address."""
    payload = udp(546, 547, b"\x01\x00\x00\x01")
    src = ipaddress.IPv6Address("fe80::11").packed
    dst = ipaddress.IPv6Address(dst_ip).packed
    head = struct.pack("!IHBB16s16s", 6 << 28, len(payload), 17, 1, src, dst)
    return eth("33:33:00:01:00:02", src_mac, 0x86DD, head + payload)


def reasons(emits: Sequence[Emit]) -> list[str]:
    return [e.reason for e in emits if isinstance(e, Drop | Punt)]


def test_a_spoofed_gratuitous_arp_and_reply_are_dropped_and_counted() -> None:
    a = guarded()
    garp = arp_frame(1, VM1[1], VM5[2], VM5[2])  # "10.1.1.15 is at VM1's MAC"
    reply = arp_frame(2, VM1[1], VM2[2], VM5[2], dst=VM5[1])  # "10.1.1.12 is at VM1's MAC"
    request = arp_frame(1, VM1[1], VM2[2], "10.1.1.1")  # a request claiming VM2's address
    assert reasons(a.process("vm1", garp) + a.process("vm1", reply)) == [ARP_GUARD, ARP_GUARD]
    assert reasons(a.process("vm1", request)) == [ARP_GUARD]
    counters = a.listing.counters("vm1")
    assert counters["drop:arp_guard"] == 3
    assert counters.get("punt:arp", 0) == 0  # the agent never saw them


def test_arp_for_its_own_address_and_probes_still_reach_the_agent() -> None:
    a = guarded()
    own_garp = arp_frame(1, VM1[1], VM1[2], VM1[2])
    probe = arp_frame(1, VM1[1], "0.0.0.0", VM1[2])  # RFC 5227: claims nothing
    request = arp_frame(1, VM1[1], VM1[2], VM5[2])
    for frame in (own_garp, probe, request):
        assert reasons(a.process("vm1", frame)) == ["arp"]
    assert a.listing.counters("vm1")["punt:arp"] == 3


def test_without_the_arp_guard_a_spoof_goes_to_the_agent() -> None:
    for a in (host(PA_A, MAC_A), guarded(arp=False)):
        assert reasons(a.process("vm1", arp_frame(1, VM1[1], VM5[2], VM5[2]))) == ["arp"]


def test_another_port_is_not_guarded() -> None:
    a = guarded()
    assert reasons(a.process("vm5", arp_frame(1, VM5[1], VM2[2], VM2[2]))) == ["arp"]


def test_a_broadcast_dhcp_offer_is_dropped_before_replication() -> None:
    a = guarded()
    emits = a.process("vm1", dhcp_offer(BROADCAST, "255.255.255.255"))
    assert reasons(emits) == [DHCP_GUARD]
    assert not [e for e in emits if isinstance(e, Deliver | Transmit)]
    assert a.listing.counters("vm1")["drop:dhcp_guard"] == 1


def test_unicast_dhcp_server_messages_v4_and_v6_are_dropped() -> None:
    a = guarded(arp=False)
    a.programming.apply(c.AddPort("vm1", VM1[1], VM1[3], VM1[4], (VM1[2], "fe80::1")))
    for _ in range(2):  # the second takes the cached drop
        assert reasons(a.process("vm1", dhcp_offer(VM5[1], VM5[2]))) == [DHCP_GUARD]
        assert reasons(a.process("vm1", dhcpv6_advertise())) == [DHCP_GUARD]
    assert a.listing.counters("vm1")["drop:dhcp_guard"] == 4


def test_without_the_dhcp_guard_an_offer_reaches_the_other_vms() -> None:
    a = guarded(dhcp=False)
    emits = a.process("vm1", dhcp_offer(BROADCAST, "255.255.255.255"))
    assert [e.port for e in emits if isinstance(e, Deliver)] == ["vm5"]  # the local VM
    assert {e.provider_address for e in emits if isinstance(e, Transmit)} == {PA_B}


def test_dhcp_client_messages_pass_the_guard_to_the_host_responder() -> None:
    a = guarded()
    discover = eth(BROADCAST, VM1[1], 0x0800, ipv4("0.0.0.0", "255.255.255.255", 17, udp(68, 67)))
    assert reasons(a.process("vm1", discover)) == ["dhcp"]
    other = udp_frame(VM1[1], VM5[1], VM1[2], VM5[2], sport=40000, dport=53)
    assert isinstance(a.process("vm1", other)[0], Deliver)  # the guard holds nothing else


def test_dhcpv6_client_messages_are_punted_to_the_host_responder_never_flooded() -> None:
    a = guarded()
    emits = a.process("vm1", dhcpv6_client(VM1[1]))
    assert reasons(emits) == ["dhcp6"]
    assert len(emits) == 1
    emits = a.process("vm1", dhcpv6_client(VM1[1]))  # never cached: punted every time
    assert reasons(emits) == ["dhcp6"]
    spoofed = a.process("vm1", dhcpv6_client("02:00:00:00:00:99"))
    assert "dhcp6" not in reasons(spoofed)


def test_guarding_an_established_relay_flow_withdraws_its_kernel_entry() -> None:
    a = host(PA_A, MAC_A)
    a.offload.enable()
    relay = udp_frame(VM1[1], VM5[1], VM1[2], VM5[2], sport=67, dport=67)  # relay -> server
    back = udp_frame(VM5[1], VM1[1], VM5[2], VM1[2], sport=67, dport=67)
    a.process("vm1", relay)
    a.process("vm5", back)
    offered = [op.head for op in a.offload.operations() if isinstance(op, Offload)]
    [head] = [h for h in offered if h.table.port == "vm1"]  # in the kernel now
    a.programming.apply_all(
        guard_layer_commands("vm1", (VM1[2],), arp_guard=False, dhcp_guard=True)
    )
    a.revalidate(a.offload.revalidation_set(ports={"vm1"}))
    assert head in [op.head for op in a.offload.operations() if isinstance(op, Withdraw)]
    assert reasons(a.process("vm1", relay)) == [DHCP_GUARD]


def test_a_dhcp_server_flow_never_goes_down_its_replies_go_to_the_host() -> None:
    a = host(PA_A, MAC_A)
    a.offload.enable()
    offer = udp_frame(VM1[1], VM5[1], VM1[2], VM5[2], sport=67, dport=68)
    request = udp_frame(VM5[1], VM1[1], VM5[2], VM1[2], sport=68, dport=67)
    a.process("vm1", offer)
    assert reasons(a.process("vm5", request)) == ["dhcp"]  # answered by the host, no pair
    assert a.offload.operations() == []


def test_an_arp_group_is_a_family_of_its_own() -> None:
    assert c.AddGroup("vm1", GUARD, "g", OUT, ARP_FAMILY).family == ARP_FAMILY
    with pytest.raises(PolicyError, match="family"):
        c.AddGroup("vm1", GUARD, "g", OUT, 5)
