"""The engine end to end: where each frame goes, with which bytes, or why it is dropped."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import pytest
from vfp_frames import (
    CONTOSO,
    FAB1,
    MAC_A,
    MAC_B,
    PA_A,
    PA_B,
    ROUTER,
    VM1,
    VM2,
    VM3,
    VM4,
    VM5,
    arp_request,
    csum,
    eth,
    host,
    icmp_echo,
    ipv4,
    mac,
    tcp_frame,
    udp,
    udp_frame,
)

from openhnv.vfp import commands as c
from openhnv.vfp.emits import UPLINK, Deliver, Drop, Punt, Transmit
from openhnv.vfp.engine import DEFAULT_CLOSE_TIMEOUT, VfpEngine
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.policy import IN, OUT, Allow, Block, Rule, conditions
from openhnv.vfp.spaces import Mapping, ProviderAddress


def only(emits: Sequence[object]) -> object:
    assert len(emits) == 1, emits
    return emits[0]


def test_l2_to_a_remote_vm_leaves_vxlan_encapsulated_toward_its_pa() -> None:
    a = host(PA_A, MAC_A)
    inner = udp_frame(VM1[1], VM2[1], VM1[2], VM2[2], sport=1000, dport=53)
    tx = only(a.process("vm1", inner, 0.0))
    assert isinstance(tx, Transmit)
    assert (tx.source_pa, tx.provider_address) == (PA_A, PA_B)
    f = tx.frame
    assert f[0:6] == mac(MAC_B)  # outer dst: the peer host's uplink MAC
    assert f[6:12] == mac(MAC_A)  # outer src: our PA's MAC
    assert f[12:14] == b"\x08\x00"  # IPv4
    assert f[14] == 0x45  # version 4, IHL 5
    assert struct.unpack("!H", f[16:18])[0] == 20 + 8 + 8 + len(inner)  # total length
    assert f[22] == 64  # outer TTL
    assert f[23] == 17  # UDP
    assert csum(f[14:34]) == 0  # a valid IPv4 header checksum
    assert f[26:30] == bytes([192, 168, 1, 10])
    assert f[30:34] == bytes([192, 168, 1, 20])
    sport, dport, ulen, ucsum = struct.unpack("!HHHH", f[34:42])
    assert 49152 <= sport <= 65535  # a hash of the inner flow
    assert dport == 4789
    assert ulen == 8 + 8 + len(inner)
    assert ucsum == 0
    assert f[42:50] == b"\x08\x00\x00\x00" + (5001).to_bytes(3, "big") + b"\x00"  # I flag, VNI
    assert f[50:] == inner  # the inner frame untouched
    # the second packet takes the fast path and gives the same bytes
    assert only(a.process("vm1", inner, 0.0)) == tx
    assert a.listing.counters("vm1")["uft_hits"] == 1


def test_the_receiving_host_decapsulates_and_delivers_to_the_vm() -> None:
    a, b = host(PA_A, MAC_A), host(PA_B, MAC_B)
    inner = udp_frame(VM1[1], VM2[1], VM1[2], VM2[2])
    tx = only(a.process("vm1", inner, 0.0))
    assert isinstance(tx, Transmit)
    for _ in range(2):  # slow path, then fast path
        assert only(b.process(UPLINK, tx.frame, 0.0)) == Deliver("vm2", inner)
    assert b.listing.counters(UPLINK)["uft_hits"] == 1


def test_flows_spread_over_source_ports() -> None:
    a = host(PA_A, MAC_A)
    ports = set()
    for sport in range(1000, 1040):
        tx = only(a.process("vm1", udp_frame(VM1[1], VM2[1], VM1[2], VM2[2], sport=sport), 0.0))
        assert isinstance(tx, Transmit)
        ports.add(struct.unpack("!H", tx.frame[34:36])[0])
    assert len(ports) > 30


def test_l2_to_a_local_vm_is_delivered_without_encapsulation() -> None:
    a = host(PA_A, MAC_A)
    frame = udp_frame(VM1[1], VM5[1], VM1[2], VM5[2])
    assert a.process("vm1", frame, 0.0) == [Deliver("vm5", frame)]
    assert a.process("vm1", frame, 0.0) == [Deliver("vm5", frame)]


def test_local_delivery_hits_the_flow_table_on_both_ports() -> None:
    a = host(PA_A, MAC_A)
    frame = udp_frame(VM1[1], VM5[1], VM1[2], VM5[2])
    for _ in range(5):
        assert a.process("vm1", frame, 0.0) == [Deliver("vm5", frame)]
    sender, receiver = a.listing.counters("vm1"), a.listing.counters("vm5")
    assert (sender["slow_path"], sender["uft_hits"]) == (1, 4), sender
    assert (receiver["slow_path"], receiver["uft_hits"]) == (1, 4), receiver


def test_routing_between_subnets_rewrites_macs_ttl_and_vsid() -> None:
    a, b = host(PA_A, MAC_A), host(PA_B, MAC_B)
    frame = udp_frame(VM1[1], ROUTER, VM1[2], VM4[2], ttl=64)
    tx = only(a.process("vm1", frame, 0.0))
    assert isinstance(tx, Transmit)
    assert tx.provider_address == PA_B
    assert tx.frame[42:50] == b"\x08\x00\x00\x00" + (5002).to_bytes(3, "big") + b"\x00"
    inner = tx.frame[50:]
    assert inner[0:6] == mac(VM4[1])  # dst MAC: the destination CA's
    assert inner[6:12] == mac(ROUTER)  # src MAC: the distributed router's
    assert inner[22] == 63  # TTL decremented
    assert csum(inner[14:34]) == 0  # and the checksum still right
    assert inner[34:] == frame[34:]
    assert b.process(UPLINK, tx.frame, 0.0) == [Deliver("vm4", inner)]


def test_routing_to_a_local_vm_of_another_subnet() -> None:
    a = host(PA_A, MAC_A)
    frame = udp_frame(VM1[1], ROUTER, VM1[2], VM3[2], ttl=2)
    out = only(a.process("vm1", frame, 0.0))
    assert isinstance(out, Deliver)
    assert out.port == "vm3"
    assert out.frame[0:12] == mac(VM3[1]) + mac(ROUTER)
    assert out.frame[22] == 1
    assert csum(out.frame[14:34]) == 0
    expired = udp_frame(VM1[1], ROUTER, VM1[2], VM3[2], ttl=1)
    assert a.process("vm1", expired, 0.0) == [Drop("vm1", "ttl_exceeded")]


def test_no_path_across_routing_domains() -> None:
    a = host(PA_A, MAC_A)
    # Fabrikam's 10.1.1.11 lives on host B; Contoso's VM1 has the same address. A packet
    # from Contoso to an address only Fabrikam has finds no mapping in Contoso's RDID.
    a.programming.apply(
        c.AddMapping(Mapping("rdid-fabrikam", "10.1.1.99", PA_B, "00:1d:d8:00:01:99", 6001))
    )
    routed = udp_frame(VM1[1], ROUTER, VM1[2], "10.1.1.99")
    assert a.process("vm1", routed, 0.0) == [Drop("vm1", "no_mapping")]
    l2 = udp_frame(VM1[1], FAB1[1], VM1[2], FAB1[2])  # Fabrikam's MAC, in VSID 5001: unknown
    assert a.process("vm1", l2, 0.0) == [Drop("vm1", "no_mapping")]
    assert a.listing.counters("vm1")["drop:no_mapping"] == 2


def test_arp_is_punted_to_the_agent() -> None:
    a = host(PA_A, MAC_A)
    frame = arp_request(VM1[1], VM1[2], VM2[2])
    assert a.process("vm1", frame, 0.0) == [Punt("vm1", frame, "arp")]
    assert a.listing.counters("vm1")["punt:arp"] == 1


def test_broadcast_is_replicated_as_unicast_to_every_other_vm_of_the_vsid() -> None:
    a = host(PA_A, MAC_A)
    frame = udp_frame(VM1[1], "ff:ff:ff:ff:ff:ff", VM1[2], "10.1.1.255", 5000, 5000)
    out = a.process("vm1", frame, 0.0)
    by_target = {(e.port if isinstance(e, Deliver) else e.provider_address): e for e in out}  # type: ignore[union-attr]
    assert set(by_target) == {"vm5", PA_B}  # VM5 local, VM2 remote; not VM3/VM4 (VSID 5002)
    local = by_target["vm5"]
    assert isinstance(local, Deliver)
    assert local.frame[0:6] == mac(VM5[1])
    assert local.frame[30:34] == bytes([10, 1, 1, 15])
    assert csum(local.frame[14:34]) == 0
    remote = by_target[PA_B]
    assert isinstance(remote, Transmit)
    inner = remote.frame[50:]
    assert inner[0:6] == mac(VM2[1])
    assert inner[30:34] == bytes([10, 1, 1, 12])


def test_spoofed_source_mac_and_ip_from_a_vm_are_dropped() -> None:
    a = host(PA_A, MAC_A)
    bad_mac = udp_frame("00:1d:d8:00:00:99", VM2[1], VM1[2], VM2[2])
    bad_ip = udp_frame(VM1[1], VM2[1], "10.1.1.200", VM2[2])
    assert a.process("vm1", bad_mac, 0.0) == [Drop("vm1", "spoofed_source")]
    assert a.process("vm1", bad_ip, 0.0) == [Drop("vm1", "spoofed_source")]
    assert a.listing.counters("vm1")["drop:spoofed_source"] == 2


def test_mac_spoofing_allowed_when_the_port_says_so() -> None:
    a = host(PA_A, MAC_A)
    a.programming.apply(c.AddPort("vm1", VM1[1], 5001, CONTOSO, (VM1[2],), allow_mac_spoofing=True))
    frame = udp_frame("00:1d:d8:00:00:99", VM2[1], VM1[2], VM2[2])
    assert isinstance(only(a.process("vm1", frame, 0.0)), Transmit)


def test_uplink_drops_an_outer_source_that_is_not_the_cas_pa() -> None:
    a, b = host(PA_A, MAC_A), host(PA_B, MAC_B)
    tx = only(a.process("vm1", udp_frame(VM1[1], VM2[1], VM1[2], VM2[2]), 0.0))
    assert isinstance(tx, Transmit)
    forged = bytearray(tx.frame)
    forged[26:30] = bytes([192, 168, 1, 99])  # an outer source that is not VM1's PA
    forged[24:26] = b"\0\0"
    forged[24:26] = csum(bytes(forged[14:34])).to_bytes(2, "big")
    assert b.process(UPLINK, bytes(forged), 0.0) == [Drop(UPLINK, "spoofed_source")]
    assert b.listing.counters(UPLINK)["drop:spoofed_source"] == 1


def test_uplink_drops_a_vsid_that_is_not_the_destination_ports() -> None:
    a, b = host(PA_A, MAC_A), host(PA_B, MAC_B)
    tx = only(a.process("vm1", udp_frame(VM1[1], VM2[1], VM1[2], VM2[2]), 0.0))
    assert isinstance(tx, Transmit)
    wrong = tx.frame[:46] + (5002).to_bytes(3, "big") + tx.frame[49:]
    assert b.process(UPLINK, wrong, 0.0) == [Drop(UPLINK, "vsid_mismatch")]


def test_uplink_drops_malformed_and_foreign_frames() -> None:
    b = host(PA_B, MAC_B)
    assert b.process(UPLINK, b"\x01\x02", 0.0) == [Drop(UPLINK, "malformed")]
    plain = udp_frame(MAC_A, MAC_B, PA_A, PA_B, dport=53)
    assert b.process(UPLINK, plain, 0.0) == [Drop(UPLINK, "malformed")]


def test_nvgre_encapsulation_and_back() -> None:
    a, b = host(PA_A, MAC_A), host(PA_B, MAC_B)
    for sw in (a, b):
        sw.programming.apply(c.AddMapping(Mapping(CONTOSO, VM2[2], PA_B, VM2[1], 5001, "nvgre")))
        sw.programming.apply(c.AddMapping(Mapping(CONTOSO, VM1[2], PA_A, VM1[1], 5001, "nvgre")))
    inner = udp_frame(VM1[1], VM2[1], VM1[2], VM2[2])
    tx = only(a.process("vm1", inner, 0.0))
    assert isinstance(tx, Transmit)
    f = tx.frame
    assert f[23] == 47  # GRE
    assert f[34:36] == b"\x20\x00"  # key present
    assert f[36:38] == b"\x65\x58"  # transparent Ethernet bridging
    assert f[38:41] == (5001).to_bytes(3, "big")  # VSID; f[41] is the FlowID
    assert struct.unpack("!H", f[16:18])[0] == 20 + 8 + len(inner)
    assert csum(f[14:34]) == 0
    assert f[42:] == inner
    assert b.process(UPLINK, f, 0.0) == [Deliver("vm2", inner)]
    assert b.process(UPLINK, f, 0.0) == [Deliver("vm2", inner)]


def test_pa_vlan_tag_is_pushed() -> None:
    a = host(PA_A, MAC_A)
    a.programming.apply(c.AddProviderAddress(ProviderAddress(PA_A, MAC_A, 24, vlan_id=42)))
    tx = only(a.process("vm1", udp_frame(VM1[1], VM2[1], VM1[2], VM2[2]), 0.0))
    assert isinstance(tx, Transmit)
    assert tx.frame[12:16] == b"\x81\x00\x00\x2a"
    assert tx.frame[16:18] == b"\x08\x00"
    assert csum(tx.frame[18:38]) == 0
    b = host(PA_B, MAC_B)
    b.programming.apply(c.AddProviderAddress(ProviderAddress(PA_B, MAC_B, 24, vlan_id=42)))
    assert b.process(UPLINK, tx.frame, 0.0) == [Deliver("vm2", tx.frame[54:])]


ACL_DENY_DNS = [(OUT, Rule("deny-dns", 100, conditions(protocols=[17], dst_ports=[53]), Block()))]


def test_acl_priority_lowest_number_wins() -> None:
    rules = [
        *ACL_DENY_DNS,
        (OUT, Rule("allow-dns-to-vm2", 90, conditions(dst_prefixes=[VM2[2] + "/32"]), Allow())),
    ]
    a = host(PA_A, MAC_A, nic_acl=rules)
    to_vm2 = udp_frame(VM1[1], VM2[1], VM1[2], VM2[2], dport=53)
    to_vm5 = udp_frame(VM1[1], VM5[1], VM1[2], VM5[2], dport=53)
    assert isinstance(only(a.process("vm1", to_vm2, 0.0)), Transmit)
    assert a.process("vm1", to_vm5, 0.0) == [Drop("vm1", "acl_deny")]
    assert a.listing.counters("vm1")["drop:acl_deny"] == 1


def test_stateful_acl_lets_replies_through_an_inbound_deny() -> None:
    deny_in = [(IN, Rule("deny-all-in", 100, conditions(), Block()))]
    a, b = host(PA_A, MAC_A, nic_acl=deny_in), host(PA_B, MAC_B)
    # an unsolicited packet from VM2 to VM1 is denied on host A
    hello = tcp_frame(VM2[1], VM1[1], VM2[2], VM1[2], 4000, 22)
    tx = only(b.process("vm2", hello, 0.0))
    assert isinstance(tx, Transmit)
    assert a.process(UPLINK, tx.frame, 0.0) == [Drop("vm1", "acl_deny")]
    # VM1 connects to VM2: the SYN leaves, the SYN-ACK comes back and is delivered
    syn = tcp_frame(VM1[1], VM2[1], VM1[2], VM2[2], 5555, 80, flags=0x02)
    assert isinstance(only(a.process("vm1", syn, 0.0)), Transmit)
    synack = tcp_frame(VM2[1], VM1[1], VM2[2], VM1[2], 80, 5555, flags=0x12)
    back = only(b.process("vm2", synack, 0.0))
    assert isinstance(back, Transmit)
    assert a.process(UPLINK, back.frame, 0.0) == [Deliver("vm1", synack)]
    assert a.process(UPLINK, back.frame, 0.0) == [Deliver("vm1", synack)]  # fast path
    flows = a.listing.flows("vm1")
    assert {f["direction"] for f in flows if f["paired"]} == {"in", "out"}


DENY_IN = Rule("deny-all-in", 100, conditions(), Block())


def deny_inbound_to_vm1() -> VfpEngine:
    a = host(PA_A, MAC_A)
    a.programming.apply(c.AddRule("vm1", "ACL_NIC", "in-v4", DENY_IN))
    return a


def test_stateful_icmp_echo_reply_passes() -> None:
    a = deny_inbound_to_vm1()
    ping = eth(VM5[1], VM1[1], 0x0800, ipv4(VM1[2], VM5[2], 1, icmp_echo(7, 8)))
    pong = eth(VM1[1], VM5[1], 0x0800, ipv4(VM5[2], VM1[2], 1, icmp_echo(7, 0)))
    other = eth(VM1[1], VM5[1], 0x0800, ipv4(VM5[2], VM1[2], 1, icmp_echo(8, 8)))
    assert a.process("vm5", other, 0.0) == [Drop("vm1", "acl_deny")]
    assert a.process("vm1", ping, 0.0) == [Deliver("vm5", ping)]
    assert a.process("vm5", pong, 0.0) == [Deliver("vm1", pong)]


@pytest.mark.parametrize("closing", [0x04, 0x11], ids=["rst", "fin-ack"])
def test_tcp_fin_and_rst_close_the_flow_pair_and_expiry_retires_it(closing: int) -> None:
    a = deny_inbound_to_vm1()
    syn = tcp_frame(VM1[1], VM5[1], VM1[2], VM5[2], 5555, 80, flags=0x02)
    reply = tcp_frame(VM5[1], VM1[1], VM5[2], VM1[2], 80, 5555, flags=0x12)
    rst = tcp_frame(VM1[1], VM5[1], VM1[2], VM5[2], 5555, 80, flags=closing)
    assert a.process("vm1", syn, 0.0) == [Deliver("vm5", syn)]
    assert a.process("vm5", reply, 0.0) == [Deliver("vm1", reply)]
    assert a.listing.counters("vm1")["connections"] == 1
    assert a.process("vm1", syn, 0.0) == [Deliver("vm5", syn)]  # fast path
    assert a.process("vm1", rst, 0.0) == [Deliver("vm5", rst)]  # the FIN/RST itself is forwarded
    assert a.process("vm5", reply, 1.0) == [Deliver("vm1", reply)]  # the close's trailing packets
    assert [f["closing"] for f in a.listing.flows("vm1")] == [True, True]
    assert a.expire(1.0 + DEFAULT_CLOSE_TIMEOUT + 1) == 4  # both ports' pairs
    assert a.listing.counters("vm1")["connections"] == 0
    assert a.listing.counters("vm1")["flows"] == 0
    assert a.process("vm5", reply, 20.0) == [Drop("vm1", "acl_deny")]  # no connection any more


def test_idle_flows_expire_with_the_injected_clock() -> None:
    now = [100.0]
    a = VfpEngine(idle_timeout=30.0, clock=lambda: now[0])
    b = host(PA_A, MAC_A)
    for cmd in (c.AddProviderAddress(ProviderAddress(PA_A, MAC_A)), c.SetPaNeighbor(PA_B, MAC_B)):
        a.programming.apply(cmd)
    a.programming.apply_all(m for m in [c.AddMapping(x.mapping) for x in _mappings(b)])
    a.programming.apply_all(_port_commands("vm1"))
    frame = udp_frame(VM1[1], VM2[1], VM1[2], VM2[2])
    a.process("vm1", frame)
    assert a.listing.counters("vm1")["flows"] == 1
    now[0] = 120.0
    assert a.expire() == 0
    a.process("vm1", frame)  # a hit refreshes it
    now[0] = 149.0
    assert a.expire() == 0
    now[0] = 151.0
    assert a.expire() == 1
    assert a.listing.counters("vm1")["flows"] == 0


def _mappings(sw: VfpEngine) -> list[c.AddMapping]:
    return [
        c.AddMapping(Mapping(**{k: v for k, v in m.items() if k != "local"}))
        for m in sw.listing.mappings()
    ]


def _port_commands(name: str) -> list[c.Command]:
    from openhnv.vfp.layout import hnv_port_commands

    port = c.AddPort(name, VM1[1], 5001, CONTOSO, (VM1[2],))
    return hnv_port_commands(port, router_mac=ROUTER, vnet_prefixes=["10.1.0.0/16"])


def test_a_full_flow_table_drops_and_counts() -> None:
    a = host(PA_A, MAC_A, capacity=3)
    for sport in range(1000, 1005):
        a.process("vm1", udp_frame(VM1[1], VM2[1], VM1[2], VM2[2], sport=sport), 0.0)
    assert a.listing.counters("vm1")["drop:flow_table_full"] == 2
    assert a.listing.counters("vm1")["flows"] == 3
    # an existing flow keeps working
    assert isinstance(
        only(a.process("vm1", udp_frame(VM1[1], VM2[1], VM1[2], VM2[2]), 0.0)), Transmit
    )


def test_a_rule_change_re_evaluates_existing_flows_without_flushing() -> None:
    a = host(PA_A, MAC_A)
    frame = udp_frame(VM1[1], VM2[1], VM1[2], VM2[2], dport=53)
    assert isinstance(only(a.process("vm1", frame, 0.0)), Transmit)
    gen = a.listing.flows("vm1")[0]["generation"]
    a.programming.apply(c.AddRule("vm1", "ACL_NIC", "out-v4", ACL_DENY_DNS[0][1]))
    assert a.listing.counters("vm1")["flows"] == 1  # not flushed
    assert a.process("vm1", frame, 0.0) == [Drop("vm1", "acl_deny")]
    flow = a.listing.flows("vm1")[0]
    assert flow["generation"] > gen
    assert flow["result"] == "drop(acl_deny)"
    a.programming.apply(c.RemoveRule("vm1", "ACL_NIC", "out-v4", "deny-dns"))
    assert isinstance(only(a.process("vm1", frame, 0.0)), Transmit)
    assert a.listing.counters("vm1")["flow_setups"] == 1


def test_a_mapping_change_re_evaluates_existing_flows() -> None:
    a = host(PA_A, MAC_A)
    frame = udp_frame(VM1[1], VM2[1], VM1[2], VM2[2])
    first = only(a.process("vm1", frame, 0.0))
    assert isinstance(first, Transmit)
    assert first.provider_address == PA_B
    # VM2 live-migrates to a host with PA 192.168.1.30
    a.programming.apply(c.SetPaNeighbor("192.168.1.30", "02:00:00:00:0c:01"))
    a.programming.apply(c.AddMapping(Mapping(CONTOSO, VM2[2], "192.168.1.30", VM2[1], 5001)))
    moved = only(a.process("vm1", frame, 0.0))
    assert isinstance(moved, Transmit)
    assert moved.provider_address == "192.168.1.30"
    assert moved.frame[0:6] == mac("02:00:00:00:0c:01")
    a.programming.apply(c.RemoveMapping(CONTOSO, VM2[2]))
    assert a.process("vm1", frame, 0.0) == [Drop("vm1", "no_mapping")]


def test_a_blocked_port_drops_everything() -> None:
    a = host(PA_A, MAC_A)
    a.programming.apply(c.SetPortState("vm1", enabled=False))
    frame = udp_frame(VM1[1], VM5[1], VM1[2], VM5[2])
    assert a.process("vm1", frame, 0.0) == [Drop("vm1", "port_blocked")]
    a.programming.apply(c.SetPortState("vm1", enabled=True))
    a.programming.apply(c.SetPortState("vm5", enabled=False))
    assert a.process("vm1", frame, 0.0) == [Drop("vm5", "port_blocked")]


def test_malformed_frames_from_a_vm_are_dropped() -> None:
    a = host(PA_A, MAC_A)
    truncated = eth(VM2[1], VM1[1], 0x0800, ipv4(VM1[2], VM2[2], 17, udp(1, 2))[:25])
    assert a.process("vm1", truncated, 0.0) == [Drop("vm1", "malformed")]
    assert a.listing.counters("vm1")["drop:malformed"] == 1


def test_unknown_port_and_bad_commands_raise_policy_errors() -> None:
    a = host(PA_A, MAC_A)
    with pytest.raises(PolicyError, match="port='nope'"):
        a.process("nope", b"", 0.0)
    with pytest.raises(PolicyError, match="layer='NOPE'"):
        a.programming.apply(c.AddGroup("vm1", "NOPE", "g", OUT))
    with pytest.raises(PolicyError, match="mac"):
        a.programming.apply(c.AddPort("vmx", VM1[1], 5001, CONTOSO))  # VM1's MAC is taken
    with pytest.raises(PolicyError, match="rule_id='ghost'"):
        a.programming.apply(c.RemoveRule("vm1", "ACL_NIC", "out-v4", "ghost"))
    a.programming.apply(c.RemoveRule("vm1", "ACL_NIC", "out-v4", "ghost", missing_ok=True))


def test_the_close_timeout_must_be_positive() -> None:
    with pytest.raises(PolicyError, match="close_timeout=0"):
        VfpEngine(close_timeout=0)


def test_cached_outer_headers_follow_the_inner_length() -> None:
    a = host(PA_A, MAC_A)
    for size in (1, 300, 1, 1400):
        inner = eth(VM2[1], VM1[1], 0x0800, ipv4(VM1[2], VM2[2], 17, udp(1000, 53, b"z" * size)))
        tx = only(a.process("vm1", inner, 0.0))
        assert isinstance(tx, Transmit)
        assert struct.unpack("!H", tx.frame[16:18])[0] == 36 + len(inner)
        assert struct.unpack("!H", tx.frame[38:40])[0] == 16 + len(inner)
        assert csum(tx.frame[14:34]) == 0
        assert tx.frame[50:] == inner
    assert a.listing.counters("vm1")["flow_setups"] == 1


def test_a_frame_too_long_for_one_outer_ipv4_packet_is_a_counted_drop() -> None:
    """A 64 KB frame (a veth's GSO) cannot be encapsulated: dropped, fast path and slow."""
    a = host(PA_A, MAC_A)
    small = udp_frame(VM1[1], VM2[1], VM1[2], VM2[2], sport=1000, dport=53)
    big = eth(VM2[1], VM1[1], 0x0800, ipv4(VM1[2], VM2[2], 17, udp(1000, 53, bytes(65500))))
    assert isinstance(only(a.process("vm1", small, 0.0)), Transmit)  # the flow is cached
    for _ in range(2):  # the cached flow, then the same frame again
        drop = only(a.process("vm1", big, 0.0))
        assert drop == Drop("vm1", "mtu_exceeded")
    other = eth(VM2[1], VM1[1], 0x0800, ipv4(VM1[2], VM2[2], 17, udp(1001, 53, bytes(65500))))
    assert only(a.process("vm1", other, 0.0)) == Drop("vm1", "mtu_exceeded")  # a new flow
    assert a.listing.counters("vm1")["drop:mtu_exceeded"] == 3
