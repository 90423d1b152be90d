"""Forwarding's choice of the outer source PA (``pinned_source``) on a host with two PAs.

A receiver accepts a tunnelled packet only from the PA its mapping space holds for the
inner source CA, so traffic of a mapped VM leaves from that PA; only traffic whose
source has no mapping to a local PA spreads over the PAs by flow hash.
"""

from __future__ import annotations

from collections.abc import Sequence

from vfp_frames import (
    CONTOSO,
    MAC_B,
    PA_B,
    ROUTER,
    VM1,
    VM2,
    VM4,
    VM5,
    eth,
    host,
    ipv4,
    mac,
    udp,
    udp_frame,
)

from openhnv.vfp import commands as c
from openhnv.vfp.emits import UPLINK, Deliver, Drop, Transmit
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.layout import hnv_port_commands
from openhnv.vfp.spaces import Mapping, ProviderAddress

PA_1, PA_2 = "192.168.1.10", "192.168.1.11"  # two team members on one rack
MAC_1, MAC_2 = "02:00:00:00:0a:01", "02:00:00:00:0a:02"
OTHER_RACK_PA, OTHER_RACK_MAC = "192.168.2.10", "02:00:00:00:0a:03"
GATEWAY_MAC = "02:00:00:00:0f:0f"
PRIVATE = ("vm9", "00:1d:d8:00:00:09", "10.1.1.19")  # a port without a mapping of its own


def two_pa_host(vm1_pa: str = PA_2, second: ProviderAddress | None = None) -> VfpEngine:
    """Host A with PAs PA_1 and ``second`` (default PA_2); VM1 mapped at ``vm1_pa``, VM5 at PA_1."""
    sw = VfpEngine(clock=lambda: 0.0)
    sw.programming.apply(c.AddProviderAddress(ProviderAddress(PA_1, MAC_1, 24)))
    sw.programming.apply(c.AddProviderAddress(second or ProviderAddress(PA_2, MAC_2, 24)))
    sw.programming.apply(c.SetPaNeighbor(PA_B, MAC_B))
    for name, vm_mac, ip, vsid, rdid, pa in (VM1, VM2, VM4, VM5):
        local_pa = {"vm1": vm1_pa, "vm5": PA_1}.get(name, pa)
        sw.programming.apply(c.AddMapping(Mapping(rdid, ip, local_pa, vm_mac, vsid)))
    for name, vm_mac, ip in ((VM1[0], VM1[1], VM1[2]), (VM5[0], VM5[1], VM5[2]), PRIVATE):
        port = c.AddPort(name, vm_mac, 5001, CONTOSO, (ip,))
        sw.programming.apply_all(
            hnv_port_commands(port, router_mac=ROUTER, vnet_prefixes=["10.1.0.0/16"])
        )
    return sw


def receiver(vm1_pa: str) -> VfpEngine:
    """Host B, whose mapping space holds VM1 at ``vm1_pa`` and VM5 at PA_1."""
    b = host(PA_B, MAC_B)
    b.programming.apply(c.AddMapping(Mapping(CONTOSO, VM1[2], vm1_pa, VM1[1], 5001)))
    b.programming.apply(c.AddMapping(Mapping(CONTOSO, VM5[2], PA_1, VM5[1], 5001)))
    return b


def transmits(sw: VfpEngine, port: str, frames: list[bytes]) -> list[Transmit]:
    out = [em for f in frames for em in sw.process(port, f, 0.0)]
    assert all(isinstance(em, Transmit) for em in out), out
    return out  # type: ignore[return-value]


def flows(src: tuple[str, str, str], dst: Sequence[object], n: int = 64) -> list[bytes]:
    """``n`` UDP flows from VM ``src`` to VM ``dst`` (name, MAC, address, ...)."""
    dst_mac, dst_ip = str(dst[1]), str(dst[2])
    return [udp_frame(src[1], dst_mac, src[2], dst_ip, sport=2000 + i) for i in range(n)]


def test_every_flow_of_a_vm_leaves_from_its_mapped_pa_and_is_accepted() -> None:
    a, b = two_pa_host(vm1_pa=PA_2), receiver(PA_2)
    for _ in range(2):  # slow path, then the cached flows
        for tx in transmits(a, "vm1", flows(VM1[:3], VM2)):
            assert tx.source_pa == PA_2
            assert tx.frame[6:12] == mac(MAC_2)  # out of PA_2's uplink
            assert b.process(UPLINK, tx.frame, 0.0) == [Deliver("vm2", tx.frame[50:])]
    for tx in transmits(a, "vm5", flows(VM5[:3], VM2)):
        assert tx.source_pa == PA_1
        assert b.process(UPLINK, tx.frame, 0.0) == [Deliver("vm2", tx.frame[50:])]
    assert b.listing.counters(UPLINK).get("drop:spoofed_source", 0) == 0


def test_routed_flows_leave_from_the_mapped_pa_too() -> None:
    a, b = two_pa_host(vm1_pa=PA_2), receiver(PA_2)
    frames = [udp_frame(VM1[1], ROUTER, VM1[2], VM4[2], sport=3000 + i) for i in range(32)]
    for tx in transmits(a, "vm1", frames):
        assert tx.source_pa == PA_2
        (em,) = b.process(UPLINK, tx.frame, 0.0)
        assert isinstance(em, Deliver)
        assert em.port == "vm4"


def test_broadcast_copies_leave_from_the_mapped_pa() -> None:
    a = two_pa_host(vm1_pa=PA_2)
    frame = eth("ff:ff:ff:ff:ff:ff", VM1[1], 0x0800, ipv4(VM1[2], "10.1.1.255", 17, udp(5000, 500)))
    out = a.process("vm1", frame, 0.0)
    remote = [em for em in out if isinstance(em, Transmit)]
    assert [em.source_pa for em in remote] == [PA_2]  # the copy to VM2 on host B
    assert any(isinstance(em, Deliver) and em.port == "vm5" for em in out)


def test_flows_of_an_unmapped_source_still_spread_over_both_pas() -> None:
    a, b = two_pa_host(), receiver(PA_2)
    used = {tx.source_pa for tx in transmits(a, "vm9", flows(PRIVATE, VM2))}
    assert used == {PA_1, PA_2}
    tx = transmits(a, "vm9", flows(PRIVATE, VM2, 1))[0]  # and B has no mapping to accept it
    assert b.process(UPLINK, tx.frame, 0.0) == [Drop(UPLINK, "spoofed_source")]


def test_a_mapped_pa_off_link_from_the_destination_goes_through_its_gateway() -> None:
    other = ProviderAddress(OTHER_RACK_PA, OTHER_RACK_MAC, 24, 12, GATEWAY_MAC)
    a, b = two_pa_host(vm1_pa=OTHER_RACK_PA, second=other), receiver(OTHER_RACK_PA)
    for tx in transmits(a, "vm1", flows(VM1[:3], VM2, 16)):
        assert tx.source_pa == OTHER_RACK_PA  # though PA_1 is on-link with PA_B
        assert tx.frame[0:6] == mac(GATEWAY_MAC)
        assert tx.frame[6:12] == mac(OTHER_RACK_MAC)
        assert tx.frame[12:16] == b"\x81\x00\x00\x0c"  # the other rack's VLAN
        untagged = tx.frame[:12] + tx.frame[16:]
        assert b.process(UPLINK, untagged, 0.0) == [Deliver("vm2", untagged[50:])]
