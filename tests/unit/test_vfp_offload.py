"""engine.offload: which flows a kernel fast path may execute, and when one must leave it."""

from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from vfp_frames import (
    MAC_A,
    MAC_B,
    PA_A,
    PA_B,
    ROUTER,
    VM1,
    VM2,
    VM3,
    VM5,
    TcpEnd,
    arp_request,
    host,
    udp_frame,
)

from openhnv.vfp import commands as c
from openhnv.vfp.emits import UPLINK, Deliver, Drop, Transmit
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.layout import hnv_port_commands
from openhnv.vfp.offload import (
    CLOSING_FRAMES_PAST_PAIRING,
    DECAP,
    DELIVER,
    ENCAP,
    PENDING_MAX,
    Offload,
    OffloadOp,
    edited_key,
)
from openhnv.vfp.policy import OUT, Block, Encapsulate, Rule, conditions
from openhnv.vfp.spaces import Mapping, ProviderAddress


def engines() -> tuple[VfpEngine, VfpEngine]:
    a, b = host(PA_A, MAC_A), host(PA_B, MAC_B)
    a.offload.enable()
    b.offload.enable()
    return a, b


def summary(ops: list[OffloadOp]) -> set[tuple[str, str, str, str | None]]:
    return {(type(op).__name__, op.entry.action, op.entry.port, op.entry.target) for op in ops}


def handshake(a: VfpEngine, b: VfpEngine, sport: int = 40000) -> tuple[TcpEnd, TcpEnd]:
    """VM1 (host A) connects to VM2 (host B): SYN, SYN-ACK; the ops are left pending."""
    c1, c2 = TcpEnd(VM1, VM2, sport, 80), TcpEnd(VM2, VM1, 80, sport)
    syn = c1.segment(0x02)
    [tx] = a.process("vm1", syn)
    assert isinstance(tx, Transmit)
    b.process(UPLINK, tx.frame)
    c2.saw(syn)
    [back] = b.process("vm2", c2.segment(0x12))
    assert isinstance(back, Transmit)
    a.process(UPLINK, back.frame)
    return c1, c2


def test_a_connection_goes_down_once_both_directions_are_decided() -> None:
    a, b = engines()
    c1 = TcpEnd(VM1, VM2, 40000, 80)
    [tx] = a.process("vm1", c1.segment(0x02))
    assert a.offload.operations() == []  # one direction only: the SYN stays in Python
    assert isinstance(tx, Transmit)
    b.process(UPLINK, tx.frame)
    assert b.offload.operations() == []
    c2 = TcpEnd(VM2, VM1, 80, 40000)
    [back] = b.process("vm2", c2.segment(0x12))
    assert summary(b.offload.operations()) == {
        ("Offload", ENCAP, "vm2", None),  # VM2's replies, encapsulated toward host A
        ("Offload", DECAP, UPLINK, "vm2"),  # VM1's frames, decapsulated to VM2
    }
    assert isinstance(back, Transmit)
    a.process(UPLINK, back.frame)
    ops = a.offload.operations()
    assert summary(ops) == {("Offload", ENCAP, "vm1", None), ("Offload", DECAP, UPLINK, "vm1")}
    [encap] = [op for op in ops if isinstance(op, Offload) and op.entry.action == ENCAP]
    sport = struct.unpack_from("!H", tx.frame, 34)[0]
    assert encap.entry.entropy == sport  # the kernel writes the source port Python wrote
    assert encap.entry.encap is not None
    assert encap.entry.encap.provider_address == PA_B
    assert a.offload.operations() == []  # nothing changed since


def test_a_connection_is_due_once_it_carries_frames_past_its_handshake() -> None:
    a, b = engines()
    c1 = TcpEnd(VM1, VM2, 40000, 80)
    [tx] = a.process("vm1", c1.segment(0x02))
    assert a.offload.pending
    assert not a.offload.due()
    assert isinstance(tx, Transmit)
    b.process(UPLINK, tx.frame)
    assert b.offload.pending
    assert not b.offload.due()
    c2 = TcpEnd(VM2, VM1, 80, 40000)
    [back] = b.process("vm2", c2.segment(0x12))
    assert not b.offload.due()  # VM2's answer pairs the connection: its path writes nothing
    assert isinstance(back, Transmit)
    a.process(UPLINK, back.frame)
    assert not a.offload.due()  # ...nor does the SYN-ACK's, toward VM1
    [ack] = a.process("vm1", c1.segment(0x10))  # the handshake's last ACK
    assert not a.offload.due()
    assert len(a.offload.marks) == 2  # counted: one frame past the pairing
    [data] = a.process("vm1", c1.segment(0x18, b"GET /"))  # its first data
    assert a.offload.due()
    assert summary(a.offload.operations()) == {  # the SYN's waiting notes went down too
        ("Offload", ENCAP, "vm1", None), ("Offload", DECAP, UPLINK, "vm1")
    }  # fmt: skip
    assert not a.offload.due()
    assert not a.offload.marks
    for frame in (ack, data):  # host B: the same two frames from the uplink
        assert isinstance(frame, Transmit)
        assert not b.offload.due()
        b.process(UPLINK, frame.frame)
    assert b.offload.due()
    assert summary(b.offload.operations()) == {
        ("Offload", ENCAP, "vm2", None), ("Offload", DECAP, UPLINK, "vm2")
    }  # fmt: skip


def test_frames_past_the_pairing_count_at_the_same_clock_reading() -> None:
    a, b = engines()  # the engines' clock stands still: the marks, not the time, tell
    _c1, c2 = handshake(a, b)
    assert not a.offload.due()
    for n, payload in enumerate((b"banner", b"more")):  # the server speaks first
        [data] = b.process("vm2", c2.segment(0x18, payload))
        assert isinstance(data, Transmit)
        a.process(UPLINK, data.frame)
        assert a.offload.due() == (n == 1)


def test_a_connection_that_ends_with_its_handshake_is_never_due() -> None:
    a, b = engines()
    c1, _c2 = handshake(a, b)
    assert not a.offload.due()
    a.process("vm1", c1.segment(0x10))  # the last ACK, then nothing
    for _ in range(3):
        assert not a.offload.due()
    assert a.expire(10_000.0) > 0
    assert a.offload.operations() == []  # nothing was offered: nothing to withdraw


def test_a_connection_that_closes_after_its_handshake_never_goes_down() -> None:
    a, b = engines()
    c1, c2 = handshake(a, b)
    for flags in (0x10, 0x11):  # the last ACK, then VM1 closes
        a.process("vm1", c1.segment(flags))
        assert not a.offload.due()
    [fin] = b.process("vm2", c2.segment(0x11))  # VM2 closes too
    assert isinstance(fin, Transmit)
    a.process(UPLINK, fin.frame)
    assert not a.offload.due()
    a.process("vm1", c1.segment(0x10))  # the close's last ACK
    assert not a.offload.due()
    assert a.offload.operations() == []  # nor does an expiry's evaluation write it
    assert not a.offload.offered


def test_notes_looked_at_and_ended_on_the_slow_path_make_no_round_look_again() -> None:
    a, b = engines()
    c1, c2 = handshake(a, b)
    assert a.offload.may_be_due()  # the handshake's notes: not looked at yet
    for flags in (0x10, 0x11):
        a.process("vm1", c1.segment(flags))
    assert not a.offload.due()  # counted
    assert not a.offload.due()  # a quiet round: it ends on the slow path
    assert a.offload.pending
    assert not a.offload.may_be_due()
    [fin] = b.process("vm2", c2.segment(0x11))
    assert isinstance(fin, Transmit)
    a.process(UPLINK, fin.frame)
    assert not a.offload.may_be_due()  # a frame of a decided connection notes nothing
    handshake(a, b, 40001)  # a new connection's notes
    assert a.offload.may_be_due()


def test_a_half_closed_connection_that_streams_on_goes_down() -> None:
    a, b = engines()
    c1, c2 = handshake(a, b)
    a.process("vm1", c1.segment(0x10))
    a.process("vm1", c1.segment(0x11))  # VM1 closes its side; VM2 streams its answer
    rounds = 0
    while not a.offload.due():
        [data] = b.process("vm2", c2.segment(0x10, b"x" * 100))
        assert isinstance(data, Transmit)
        a.process(UPLINK, data.frame)
        rounds += 1
        assert rounds < 2 * CLOSING_FRAMES_PAST_PAIRING
    assert rounds == CLOSING_FRAMES_PAST_PAIRING - 1  # its ACK and FIN made the first round
    assert summary(a.offload.operations()) == {
        ("Offload", ENCAP, "vm1", None), ("Offload", DECAP, UPLINK, "vm1")
    }  # fmt: skip


def test_a_closing_connection_with_a_quiet_round_ends_on_the_slow_path() -> None:
    a, b = engines()
    c1, c2 = handshake(a, b)
    a.process("vm1", c1.segment(0x10))
    a.process("vm1", c1.segment(0x11))
    assert not a.offload.due()  # counted
    assert not a.offload.due()  # a round without its frames: it stops waiting
    assert not a.offload.marks
    for _ in range(2 * CLOSING_FRAMES_PAST_PAIRING):  # what comes later stays in Python
        [data] = b.process("vm2", c2.segment(0x10, b"late"))
        assert isinstance(data, Transmit)
        a.process(UPLINK, data.frame)
        assert not a.offload.due()
    assert a.offload.operations() == []


def test_an_offered_connection_keeps_its_entries_when_it_closes() -> None:
    a, b = engines()
    c1, _c2 = handshake(a, b)
    assert len(a.offload.operations()) == 2
    [fin] = a.process("vm1", c1.segment(0x11))
    assert isinstance(fin, Transmit)
    a.offload.touch(list(a.offload.offered))
    assert a.offload.operations() == []  # the kernel still carries what follows the FIN
    assert len(a.offload.offered) == 2


def test_a_new_decapsulating_head_of_a_paired_connection_is_due() -> None:
    a, b = engines()
    c1, _c2 = handshake(a, b)
    a.offload.operations()
    b.offload.operations()
    [tx] = a.process("vm1", c1.segment(0x10, b"data"))
    assert isinstance(tx, Transmit)
    moved = bytearray(tx.frame)  # the same inner frame under another outer source port
    moved[34:36] = struct.pack("!H", struct.unpack_from("!H", tx.frame, 34)[0] ^ 0x0101)
    b.process(UPLINK, bytes(moved))
    assert b.offload.due()  # its tail is paired already: it may go down at once
    assert ("Offload", DECAP, UPLINK, "vm2") in summary(b.offload.operations())


def test_a_retired_connection_is_due() -> None:
    a, b = engines()
    handshake(a, b)
    a.offload.operations()
    assert a.expire(10_000.0) > 0
    assert a.offload.due()
    assert {type(op).__name__ for op in a.offload.operations()} == {"Withdraw"}


def test_notes_that_never_pair_are_due_once_there_are_many() -> None:
    a, _ = engines()
    for sport in range(PENDING_MAX):  # SYNs nobody answers, from two ports (a table each)
        port, vm = ("vm1", VM1) if sport % 2 else ("vm5", VM5)
        a.process(port, TcpEnd(vm, VM2, 10000 + sport, 80).segment(0x02))
    assert len(a.offload.pending) == PENDING_MAX
    assert a.offload.due()
    assert a.offload.operations() == []
    assert not a.offload.pending


def test_same_host_vms_compose_delivery_with_the_peer_inbound_flow() -> None:
    a, _ = engines()
    l1, l5 = TcpEnd(VM1, VM5, 40001, 80), TcpEnd(VM5, VM1, 80, 40001)
    syn = l1.segment(0x02)
    a.process("vm1", syn)
    l5.saw(syn)
    a.process("vm5", l5.segment(0x12))
    ops = a.offload.operations()
    assert summary(ops) == {("Offload", DELIVER, "vm1", "vm5"), ("Offload", DELIVER, "vm5", "vm1")}
    for op in ops:
        assert isinstance(op, Offload)
        assert op.tail is not None
        assert op.entry.ports == (op.entry.port, op.entry.target)  # both policies decided


def test_a_routed_pair_carries_the_router_edit_and_one_ttl_decrement() -> None:
    a, _ = engines()
    r1, r3 = TcpEnd(VM1, VM3, 40002, 80), TcpEnd(VM3, VM1, 80, 40002)
    r1.peer_mac = r3.peer_mac = ROUTER
    syn = r1.segment(0x02)
    [delivered] = a.process("vm1", syn)
    assert isinstance(delivered, Deliver)
    assert delivered.port == "vm3"
    r3.saw(syn)
    a.process("vm3", r3.segment(0x12))
    ops = [op for op in a.offload.operations() if isinstance(op, Offload)]
    [to_vm3] = [op for op in ops if op.entry.port == "vm1"]
    edit = to_vm3.entry.edit
    assert edit is not None
    assert edit.decrement_ttl
    assert edit.macs == bytes.fromhex(VM3[1].replace(":", "")) + bytes.fromhex(
        ROUTER.replace(":", "")
    )
    # the tail is the inbound flow of the frame as routed: new MACs, TTL one lower
    assert to_vm3.tail is not None
    assert to_vm3.tail.key == edited_key(
        to_vm3.entry.key,
        to_vm3.head.template.edit,  # type: ignore[union-attr]
    )


def test_drops_arp_and_broadcasts_never_go_down() -> None:
    a, _ = engines()
    a.process("vm1", arp_request(VM1[1], VM1[2], VM2[2]))
    a.process("vm1", udp_frame(VM1[1], "ff:ff:ff:ff:ff:ff", VM1[2], "10.1.1.255"))
    a.programming.apply(c.AddRule("vm1", "ACL_NIC", "out-v4", DENY_ALL_OUT))
    denied = TcpEnd(VM1, VM2, 40003, 80)
    assert isinstance(a.process("vm1", denied.segment(0x10))[0], Drop)
    assert a.offload.operations() == []


DENY_ALL_OUT = Rule("deny-all-out", 100, conditions(), Block())


def test_an_acl_flip_withdraws_the_established_flow_after_revalidation() -> None:
    a, b = engines()
    handshake(a, b)
    a.offload.operations()
    a.programming.apply(c.AddRule("vm1", "ACL_NIC", "out-v4", DENY_ALL_OUT))
    heads = a.offload.revalidation_set(ports={"vm1"})
    assert len(heads) == 2  # VM1's encapsulation and the decapsulation to VM1
    a.revalidate(heads)
    ops = a.offload.operations()
    assert ("Withdraw", ENCAP, "vm1", None) in summary(ops)
    counters = a.listing.counters("vm1")
    assert counters.get("drop:acl_deny", 0) == 0  # a revalidation is not a packet


@pytest.mark.parametrize("vm_first", [True, False], ids=["vm-head-first", "uplink-head-first"])
def test_an_acl_flip_stops_the_connection_whatever_the_revalidation_order(vm_first: bool) -> None:
    a, b = engines()
    c1, c2 = handshake(a, b)
    [tx] = a.process("vm1", c1.segment(0x10, b"data"))  # established: data both ways
    assert isinstance(tx, Transmit)
    b.process(UPLINK, tx.frame)
    a.offload.operations()
    b.offload.operations()
    a.programming.apply(c.AddRule("vm1", "ACL_NIC", "out-v4", DENY_ALL_OUT))
    heads = a.offload.revalidation_set(ports={"vm1"})
    heads.sort(key=lambda h: (h.table.port == UPLINK) == vm_first)
    assert [h.table.port == UPLINK for h in heads] == [not vm_first, vm_first]
    a.revalidate(heads)
    assert ("Withdraw", ENCAP, "vm1", None) in summary(a.offload.operations())
    for _ in range(2):  # the VM's next frame, then again after one of the peer's
        assert a.process("vm1", c1.segment(0x10, b"more")) == [Drop("vm1", "acl_deny")]
        assert not any(op.entry.action == ENCAP for op in a.offload.operations())
        [reply] = b.process("vm2", c2.segment(0x10, b"reply"))
        assert isinstance(reply, Transmit)
        a.process(UPLINK, reply.frame)
    assert a.listing.counters("vm1")["drop:acl_deny"] == 2
    assert a.state.port("vm1").connections == {}  # nothing opened inbound meanwhile


@pytest.mark.parametrize("vm_first", [True, False], ids=["vm-head-first", "uplink-head-first"])
def test_an_inbound_acl_flip_stops_a_connection_opened_inbound_whatever_the_order(
    vm_first: bool,
) -> None:
    a, b = engines()
    c1, c2 = handshake(a, b)  # on host B the connection was opened inbound, toward VM2
    a.offload.operations()
    b.offload.operations()
    b.programming.apply(c.AddRule("vm2", "ACL_NIC", "in-v4", DENY_ALL_IN))
    heads = b.offload.revalidation_set(ports={"vm2"})
    heads.sort(key=lambda h: (h.table.port == UPLINK) == vm_first)
    assert [h.table.port == UPLINK for h in heads] == [not vm_first, vm_first]
    b.revalidate(heads)
    for _ in range(2):  # VM1's next frame, then again after one of VM2's
        [tx] = a.process("vm1", c1.segment(0x10, b"more"))
        assert isinstance(tx, Transmit)
        assert b.process(UPLINK, tx.frame) == [Drop("vm2", "acl_deny")]
        b.process("vm2", c2.segment(0x10, b"reply"))
        assert not any(op.entry.action == DECAP for op in b.offload.operations()
                       if isinstance(op, Offload))  # fmt: skip
    assert b.listing.counters("vm2")["drop:acl_deny"] == 2
    assert b.state.port("vm2").connections == {}  # nothing opened outbound meanwhile


DENY_ALL_IN = Rule("deny-all-in", 100, conditions(), Block())


@pytest.mark.parametrize("vm_first", [True, False], ids=["vm-head-first", "uplink-head-first"])
def test_a_flip_denying_both_ways_drops_the_replies_whatever_the_order(vm_first: bool) -> None:
    a, b = engines()
    c1, c2 = handshake(a, b)
    a.offload.operations()
    a.programming.apply(c.AddRule("vm1", "ACL_NIC", "out-v4", DENY_ALL_OUT))
    a.programming.apply(c.AddRule("vm1", "ACL_NIC", "in-v4", DENY_ALL_IN))
    heads = a.offload.revalidation_set(ports={"vm1"})
    heads.sort(key=lambda h: (h.table.port == UPLINK) == vm_first)
    a.revalidate(heads)  # the reply is decided after its origin: no reply of it any more
    assert {op.entry.action for op in a.offload.operations()} >= {ENCAP, DECAP}  # withdrawn
    [reply] = b.process("vm2", c2.segment(0x10, b"reply"))
    assert isinstance(reply, Transmit)
    assert a.process(UPLINK, reply.frame) == [Drop("vm1", "acl_deny")]
    assert a.process("vm1", c1.segment(0x10, b"more")) == [Drop("vm1", "acl_deny")]


def test_a_moved_mapping_re_offers_the_flow_toward_the_new_pa() -> None:
    a, b = engines()
    handshake(a, b)
    a.offload.operations()
    moved = "192.168.1.30"
    a.programming.apply(c.SetPaNeighbor(moved, "02:00:00:00:0c:01"))
    a.programming.apply(c.AddMapping(Mapping(VM2[4], VM2[2], moved, VM2[1], VM2[3])))
    addresses = {bytes.fromhex(VM2[1].replace(":", "")), bytes([10, 1, 1, 12])}
    heads = a.offload.revalidation_set(addresses=addresses)
    a.revalidate(heads)
    ops = a.offload.operations()
    [encap] = [op for op in ops if isinstance(op, Offload) and op.entry.action == ENCAP]
    assert encap.entry.encap is not None
    assert encap.entry.encap.provider_address == moved
    # frames from VM2's old PA no longer pass the source check: that entry leaves
    assert ("Withdraw", DECAP, UPLINK, "vm1") in summary(ops)


def test_retirement_and_a_removed_port_withdraw_their_entries() -> None:
    a, b = engines()
    handshake(a, b)
    a.offload.operations()
    a.programming.apply(c.RemovePort("vm1"))
    a.revalidate(a.offload.revalidation_set(ports={"vm1"}))
    assert summary(a.offload.operations()) == {
        ("Withdraw", ENCAP, "vm1", None),
        ("Withdraw", DECAP, UPLINK, "vm1"),
    }
    b.offload.operations()
    assert b.expire(10_000.0) > 0  # host B's pair idles out: its entries leave too
    assert summary(b.offload.operations()) == {
        ("Withdraw", ENCAP, "vm2", None),
        ("Withdraw", DECAP, UPLINK, "vm2"),
    }


def test_kernel_hits_keep_a_pair_from_idling_out() -> None:
    a, b = engines()
    handshake(a, b)
    offered = [op.head for op in a.offload.operations() if isinstance(op, Offload)]
    for head in offered:
        a.offload.used(head, 100.0)
    assert a.expire(100.0 + a.idle_timeout / 2) == 0
    assert a.expire(100.0 + a.idle_timeout * 2) > 0


def test_a_frame_too_big_for_the_uplink_is_answered_with_fragmentation_needed() -> None:
    a = VfpEngine(clock=lambda: 0.0)
    a.programming.apply(c.AddProviderAddress(ProviderAddress(PA_A, MAC_A, 24, mtu=1500)))
    a.programming.apply(c.SetPaNeighbor(PA_B, MAC_B))
    for vm in (VM1, VM2):
        a.programming.apply(c.AddMapping(Mapping(vm[4], vm[2], vm[5], vm[1], vm[3])))
    a.programming.apply_all(_open_port(VM1))
    big = TcpEnd(VM1, VM2, 40020, 80).segment(0x10, payload=b"x" * 1448)  # a 1514-byte frame
    emits = a.process("vm1", big)
    assert Drop("vm1", "mtu_exceeded") in emits
    [answer] = [e for e in emits if isinstance(e, Deliver)]
    assert answer.port == "vm1"
    assert answer.frame[34:36] == b"\x03\x04"  # ICMP destination unreachable, frag needed
    assert struct.unpack_from("!H", answer.frame, 40)[0] == 1500 - 50  # the next-hop MTU
    assert answer.frame[26:30] == bytes([10, 1, 1, 12])  # from the destination
    small = TcpEnd(VM1, VM2, 40021, 80).segment(0x10, payload=b"x" * 1398)
    assert isinstance(a.process("vm1", small)[0], Transmit)  # 1450 + 50 fits
    assert a.listing.counters("vm1")["drop:mtu_exceeded"] == 1


def _open_port(vm: tuple[object, ...]) -> list[c.Command]:
    name, mac, ip, rdid = str(vm[0]), str(vm[1]), str(vm[2]), str(vm[4])
    vsid = vm[3]
    assert isinstance(vsid, int)
    return [
        c.AddPort(name, mac, vsid, rdid, (ip,)),
        c.AddLayer(name, "VNET", 30),
        c.AddGroup(name, "VNET", "out-v4", OUT),
        c.AddRule(name, "VNET", "out-v4", Rule("l2", 1, conditions(), Encapsulate())),
    ]


def ipv6_host(pa: str, pa_mac: str) -> VfpEngine:
    """A host of two IPv6-only VMs (vm1 on A, vm2 on B), its offload on."""
    sw = VfpEngine(flow_capacity=1000, idle_timeout=60.0, clock=lambda: 0.0)
    sw.programming.apply(c.AddProviderAddress(ProviderAddress(pa, pa_mac, 24)))
    peer, peer_mac = (PA_B, MAC_B) if pa == PA_A else (PA_A, MAC_A)
    sw.programming.apply(c.SetPaNeighbor(peer, peer_mac))
    for name, vm_mac, ip, vm_pa in (("vm1", VM1[1], V6_1, PA_A), ("vm2", VM2[1], V6_2, PA_B)):
        sw.programming.apply(c.AddMapping(Mapping(str(VM1[4]), ip, vm_pa, str(vm_mac), 5001)))
        if vm_pa == pa:
            port = c.AddPort(name, str(vm_mac), 5001, str(VM1[4]), (ip,))
            sw.programming.apply_all(
                hnv_port_commands(
                    port, router_mac=ROUTER, vnet_prefixes=["fd00::/48"], families=(6,)
                )
            )
    sw.offload.enable()
    return sw


V6_1, V6_2 = "fd00::11", "fd00::12"


def test_ipv6_connections_stay_in_python() -> None:
    """The kernel programs parse IPv4 only (miss_not_ipv4): an IPv6 pair is never offered,
    nor prepared, though both directions were decided and delivered."""
    a, b = ipv6_host(PA_A, MAC_A), ipv6_host(PA_B, MAC_B)
    syn = bytes(
        Ether(src=str(VM1[1]), dst=str(VM2[1]))
        / IPv6(src=V6_1, dst=V6_2)
        / TCP(sport=40000, dport=80, flags="S")
    )
    [tx] = a.process("vm1", syn)
    assert isinstance(tx, Transmit)
    [delivered] = b.process(UPLINK, tx.frame)
    assert isinstance(delivered, Deliver)
    synack = bytes(
        Ether(src=str(VM2[1]), dst=str(VM1[1]))
        / IPv6(src=V6_2, dst=V6_1)
        / TCP(sport=80, dport=40000, flags="SA")
    )
    [back] = b.process("vm2", synack)
    assert isinstance(back, Transmit)
    [to_vm1] = a.process(UPLINK, back.frame)
    assert isinstance(to_vm1, Deliver)
    for engine in (a, b):
        assert engine.offload.operations() == []


def test_an_ipv6_packet_too_big_for_the_uplink_is_answered_with_packet_too_big() -> None:
    a = VfpEngine(clock=lambda: 0.0)
    a.programming.apply(c.AddProviderAddress(ProviderAddress(PA_A, MAC_A, 24, mtu=1500)))
    a.programming.apply(c.SetPaNeighbor(PA_B, MAC_B))
    rdid = str(VM1[4])
    a.programming.apply(c.AddMapping(Mapping(rdid, V6_1, PA_A, str(VM1[1]), 5001)))
    a.programming.apply(c.AddMapping(Mapping(rdid, V6_2, PA_B, str(VM2[1]), 5001)))
    a.programming.apply_all(
        [
            c.AddPort("vm1", str(VM1[1]), 5001, rdid, (V6_1,)),
            c.AddLayer("vm1", "VNET", 30),
            c.AddGroup("vm1", "VNET", "out-v6", OUT, 6),
            c.AddRule("vm1", "VNET", "out-v6", Rule("l2", 1, conditions(), Encapsulate())),
        ]
    )
    big = bytes(
        Ether(src=str(VM1[1]), dst=str(VM2[1]))
        / IPv6(src=V6_1, dst=V6_2)
        / TCP(sport=40030, dport=80, flags="A")
        / (b"x" * 1440)
    )
    emits = a.process("vm1", big)
    assert Drop("vm1", "mtu_exceeded") in emits
    [answer] = [e for e in emits if isinstance(e, Deliver)]
    packet = Ether(answer.frame)
    assert (packet[IPv6].src, packet[IPv6].dst) == (V6_2, V6_1)
    assert (packet[IPv6].payload.type, packet[IPv6].payload.mtu) == (2, 1500 - 50)
