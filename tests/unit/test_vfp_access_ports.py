"""Access ports (NICs on a traditional VLAN network): bridged onto their VLAN, no
encapsulation, ACLs applied both ways; where each frame goes, with which bytes."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from vfp_frames import ARP_REPLY, arp_frame, arp_request, tcp_frame

from openhnv.vfp import commands as c
from openhnv.vfp.emits import BRIDGED, UPLINK, Deliver, Drop, Transmit
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.guards import ARP_GUARD, guard_layer_commands
from openhnv.vfp.layout import access_port_commands
from openhnv.vfp.policy import IN, Block, Rule, conditions
from openhnv.vfp.spaces import ProviderAddress

VLAN = 12
PREFIX = "10.50.0.0/24"
PA = "192.168.1.10"
UPLINK_MAC = "02:00:00:00:01:0a"
VM_A = ("vma", "00:1d:d8:50:00:0a", "10.50.0.10")
VM_B = ("vmb", "00:1d:d8:50:00:0b", "10.50.0.11")
PLAIN = ("00:1d:d8:50:00:99", "10.50.0.99")  # a plain host on the VLAN, off this switch
TAG = b"\x81\x00" + VLAN.to_bytes(2, "big")


def switch(rules: Sequence[Rule] = ()) -> VfpEngine:
    engine = VfpEngine(clock=lambda: 0.0)
    engine.programming.apply(c.AddProviderAddress(ProviderAddress(PA, UPLINK_MAC, 24)))
    for name, vm_mac, address in (VM_A, VM_B):
        port = c.AddPort(name, vm_mac, 0, f"vlan-{VLAN}", (address,), access_vlan=VLAN)
        mine = [(IN, r) for r in rules] if name == "vma" else []
        engine.programming.apply_all(access_port_commands(port, subnet_prefixes=[PREFIX],
                                                          nic_acl=mine))  # fmt: skip
    return engine


def tagged(frame: bytes) -> bytes:
    return frame[:12] + TAG + frame[12:]


def test_a_frame_to_a_plain_host_leaves_tagged_with_the_vlan_and_not_encapsulated() -> None:
    engine = switch()
    frame = tcp_frame(VM_A[1], PLAIN[0], VM_A[2], PLAIN[1], 40000, 22)
    (tx,) = engine.process("vma", frame)
    assert isinstance(tx, Transmit)
    assert (tx.source_pa, tx.provider_address) == (PA, BRIDGED)
    assert tx.frame[:12] == frame[:12]  # the VM's own MACs
    assert tx.frame[12:16] == TAG  # 802.1Q, VID 12
    assert tx.frame[16:] == frame[12:]  # the rest as the VM sent it
    assert engine.process("vma", frame) == [tx]  # the flow's cached decision, same bytes


def test_arp_from_an_access_port_goes_to_the_wire_and_to_the_vlan_peers() -> None:
    engine = switch()
    request = arp_request(VM_A[1], VM_A[2], PLAIN[1])
    emits = engine.process("vma", request)
    assert Deliver("vmb", request) in emits
    assert [e.frame for e in emits if isinstance(e, Transmit)] == [tagged(request)]


def test_a_tagged_frame_from_the_wire_reaches_the_vm_of_its_mac_untagged() -> None:
    engine = switch()
    frame = tcp_frame(PLAIN[0], VM_A[1], PLAIN[1], VM_A[2], 22, 40000, flags=0x12)
    out = tcp_frame(VM_A[1], PLAIN[0], VM_A[2], PLAIN[1], 40000, 22)
    engine.process("vma", out)  # the VM opened the connection
    assert engine.process(UPLINK, tagged(frame)) == [Deliver("vma", frame)]


def test_a_broadcast_from_the_wire_reaches_every_access_port_of_the_vlan() -> None:
    engine = switch()
    request = arp_request(PLAIN[0], PLAIN[1], VM_B[2])
    emits = engine.process(UPLINK, tagged(request))
    assert sorted(e.port for e in emits if isinstance(e, Deliver)) == ["vma", "vmb"]


def test_frames_of_another_vlan_or_back_from_ourselves_are_not_delivered() -> None:
    engine = switch()
    other = tcp_frame(PLAIN[0], VM_A[1], PLAIN[1], VM_A[2], 22, 40000)
    retagged = other[:12] + b"\x81\x00\x00\x0d" + other[12:]  # VLAN 13
    assert not [e for e in engine.process(UPLINK, retagged) if isinstance(e, Deliver)]
    own = arp_request(VM_A[1], VM_A[2], PLAIN[1])
    assert engine.process(UPLINK, tagged(own)) == [Drop(UPLINK, "vlan_own_frame")]


def test_the_nic_acl_blocks_inbound_connections_on_the_vlan() -> None:
    deny_ssh = Rule("deny-ssh", 100, conditions(protocols=[6], dst_ports=[22]), Block())
    engine = switch([deny_ssh])
    ssh = tcp_frame(PLAIN[0], VM_A[1], PLAIN[1], VM_A[2], 50000, 22)
    web = tcp_frame(PLAIN[0], VM_A[1], PLAIN[1], VM_A[2], 50000, 80)
    assert not [e for e in engine.process(UPLINK, tagged(ssh)) if isinstance(e, Deliver)]
    assert engine.listing.counters("vma")["drop:acl_deny"] == 1
    assert engine.process(UPLINK, tagged(web)) == [Deliver("vma", web)]


def test_a_frame_to_an_access_port_of_the_same_vlan_is_delivered_locally() -> None:
    engine = switch()
    frame = tcp_frame(VM_A[1], VM_B[1], VM_A[2], VM_B[2], 40000, 80)
    assert engine.process("vma", frame) == [Deliver("vmb", frame)]


def test_an_access_port_has_a_vlan_of_1_to_4094_and_no_vsid() -> None:
    with pytest.raises(PolicyError, match="access_vlan"):
        c.AddPort("p", VM_A[1], 0, "r", access_vlan=4095)
    with pytest.raises(PolicyError, match="vsid"):
        c.AddPort("p", VM_A[1], 5001, "r", access_vlan=VLAN)


def test_without_a_provider_address_there_is_no_uplink_to_bridge_onto() -> None:
    engine = VfpEngine(clock=lambda: 0.0)
    port = c.AddPort("vma", VM_A[1], 0, "r", (VM_A[2],), access_vlan=VLAN)
    engine.programming.apply_all(access_port_commands(port, subnet_prefixes=[PREFIX]))
    frame = tcp_frame(VM_A[1], PLAIN[0], VM_A[2], PLAIN[1], 40000, 22)
    assert engine.process("vma", frame) == [Drop("vma", "no_provider_address")]


def test_arp_crosses_acl_layers_that_block_by_default() -> None:
    engine = VfpEngine(clock=lambda: 0.0)
    engine.programming.apply(c.AddProviderAddress(ProviderAddress(PA, UPLINK_MAC, 24)))
    name, vm_mac, address = VM_A
    engine.programming.apply_all([
        c.AddPort(name, vm_mac, 0, "r", (address,), access_vlan=VLAN),
        c.AddLayer(name, "ACL_NIC", 10, stateful=True, default_inbound=Block(),
                   default_outbound=Block()),
    ])  # fmt: skip
    request = arp_request(VM_A[1], VM_A[2], PLAIN[1])
    assert [e.frame for e in engine.process(name, request) if isinstance(e, Transmit)] == [
        tagged(request)
    ]
    answer = arp_request(PLAIN[0], PLAIN[1], VM_A[2])
    assert engine.process(UPLINK, tagged(answer)) == [Deliver(name, answer)]
    ip = tcp_frame(PLAIN[0], VM_A[1], PLAIN[1], VM_A[2], 50000, 80)
    assert not [e for e in engine.process(UPLINK, tagged(ip)) if isinstance(e, Deliver)]


def test_an_access_ports_connections_are_never_offered_to_a_kernel_fast_path() -> None:
    # The kernel's programs do not push or pop an 802.1Q tag: bridged frames, and
    # deliveries between two access ports, stay with the switch both ways.
    engine = switch()
    engine.offload.enable()
    syn = tcp_frame(VM_A[1], PLAIN[0], VM_A[2], PLAIN[1], 40000, 80)
    syn_ack = tcp_frame(PLAIN[0], VM_A[1], PLAIN[1], VM_A[2], 80, 40000, flags=0x12)
    local = tcp_frame(VM_A[1], VM_B[1], VM_A[2], VM_B[2], 40001, 80)
    local_reply = tcp_frame(VM_B[1], VM_A[1], VM_B[2], VM_A[2], 80, 40001, flags=0x12)
    for _ in range(3):
        assert isinstance(engine.process("vma", syn)[0], Transmit)
        assert engine.process(UPLINK, tagged(syn_ack)) == [Deliver("vma", syn_ack)]
        assert engine.process("vma", local) == [Deliver("vmb", local)]
        assert engine.process("vmb", local_reply) == [Deliver("vma", local_reply)]
    assert engine.state.port("vma").outbound.flows  # decided and cached, both ways paired
    assert engine.offload.operations() == []
    assert engine.offload.offered == {}


def test_an_access_ports_arp_guard_drops_its_spoofs_even_after_a_good_reply() -> None:
    engine = switch()
    engine.programming.apply_all(
        guard_layer_commands("vma", (VM_A[2],), arp_guard=True, dhcp_guard=False)
    )
    good = arp_frame(ARP_REPLY, VM_A[1], VM_A[2], PLAIN[1], dst=PLAIN[0])
    spoof = arp_frame(ARP_REPLY, VM_A[1], PLAIN[1], VM_B[2], dst=VM_B[1])
    same_macs = arp_frame(ARP_REPLY, VM_A[1], VM_B[2], PLAIN[1], dst=PLAIN[0])
    assert [e.frame for e in engine.process("vma", good) if isinstance(e, Transmit)] == [
        tagged(good)
    ]
    for frame in (spoof, same_macs):  # same Ethernet header as the good reply: not cached
        (drop,) = engine.process("vma", frame)
        assert isinstance(drop, Drop)
        assert drop.reason == ARP_GUARD
    assert engine.listing.counters("vma")["drop:arp_guard"] == 2
    assert engine.process("vma", arp_request(VM_A[1], VM_A[2], PLAIN[1]))  # its own: passes
