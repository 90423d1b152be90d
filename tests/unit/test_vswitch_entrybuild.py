"""Kernel entries built from the engine's offload entries: what the kernel would do
with them (unpacked ``FlowEntry`` / keys), with places from a fake driver."""

from __future__ import annotations

import dataclasses

from fake_fastpath import KernelNullDriver
from vfp_frames import MAC_A, MAC_B, PA_A, PA_B, VM1, VM2, TcpEnd, host

from openhnv.packet.flowkey import flow_key, outer_key
from openhnv.packet.frames import tcp_frame, vxlan_encapsulate
from openhnv.vfp.emits import UPLINK, Transmit
from openhnv.vfp.offload import DECAP, ENCAP, FlowEdit, OffloadEntry
from openhnv.vswitch.driver import PaConfig
from openhnv.vswitch.entrybuild import EntryBuilder
from openhnv.vswitch.fastpath import entries
from openhnv.vswitch.fastpath.layout import (
    ACT_DECAP_DELIVER,
    F_SET_MACS,
    FlowEntry,
    UplinkKey,
)

VM_A, VM_B = "02:00:00:00:01:01", "02:00:00:00:01:02"
ROUTER = bytes.fromhex("12345678ab01")


def _decap(sport: int, edit: FlowEdit | None = None) -> OffloadEntry:
    inner = tcp_frame(src_mac=VM_A, dst_mac=VM_B, src_ip="10.1.0.1", dst_ip="10.1.0.2",
                      src_port=sport, dst_port=80, flags=0x10)  # fmt: skip
    frame = vxlan_encapsulate(inner, outer_src_mac=MAC_A, outer_dst_mac=MAC_B, src_pa=PA_A,
                              dst_pa=PA_B, vni=5001, src_port=50000)  # fmt: skip
    okey, at = outer_key(frame)
    return OffloadEntry(DECAP, UPLINK, okey + flow_key(frame, at), "vm2", None, 0, edit,
                        (UPLINK, "vm2"))  # fmt: skip


def _builder(vlan: int | None = None) -> tuple[EntryBuilder, KernelNullDriver]:
    driver = KernelNullDriver()
    pas = {PA_B: PaConfig(PA_B, 24, vlan, None, "up0")}
    slots = {UPLINK: 0, "vm2": 11}
    return EntryBuilder(driver, lambda: pas, slots.get), driver


def test_a_decapsulation_keys_the_tunnel_frame_with_the_pas_vlan() -> None:
    builder, driver = _builder(vlan=20)
    built = builder.build(_decap(40000))
    assert built is not None
    assert (built.table, built.slots, built.port) == ("uplink", (0, 11), UPLINK)
    key = UplinkKey.unpack(built.key)
    assert (key.remote_pa, key.local_pa) == (bytes([192, 168, 1, 10]), bytes([192, 168, 1, 20]))
    assert (key.vsid, key.vlan_id, key.flow.src_port) == (5001, 20, 40000)
    entry = FlowEntry.unpack(built.entry)
    assert (entry.action, entry.ifindex) == (ACT_DECAP_DELIVER, driver.port_ifindex("vm2"))


def test_flows_to_one_port_share_the_packed_entry_and_an_edit_makes_another() -> None:
    builder, _ = _builder()
    first, second = builder.build(_decap(40000)), builder.build(_decap(40001))
    routed = builder.build(_decap(40002, FlowEdit(bytes.fromhex(VM_B.replace(":", "")) + ROUTER,
                                                  decrement_ttl=True)))  # fmt: skip
    assert first is not None
    assert second is not None
    assert routed is not None
    assert first.key != second.key
    assert first.entry == second.entry
    assert FlowEntry.unpack(routed.entry).flags & F_SET_MACS
    assert FlowEntry.unpack(routed.entry).src_mac == ROUTER


def test_a_port_without_an_interface_or_slot_has_no_entry() -> None:
    builder, _ = _builder()
    entry = _decap(40000)
    assert builder.build(entry) is not None
    unknown = OffloadEntry(DECAP, UPLINK, entry.key, "vm9", None, 0, None, (UPLINK, "vm9"))
    assert builder.build(unknown) is None


def _encap(entropy: int) -> OffloadEntry:
    """VM1's encapsulation toward VM2 (host A), as the engine offers it, with ``entropy``."""
    a, b = host(PA_A, MAC_A), host(PA_B, MAC_B)
    a.offload.enable()
    [syn] = a.process("vm1", TcpEnd(VM1, VM2, 40000, 80).segment(0x02))
    assert isinstance(syn, Transmit)
    b.process(UPLINK, syn.frame)
    [back] = b.process("vm2", TcpEnd(VM2, VM1, 80, 40000).segment(0x12))
    assert isinstance(back, Transmit)
    a.process(UPLINK, back.frame)
    [entry] = [op.entry for op in a.offload.operations() if op.entry.action == ENCAP]
    return dataclasses.replace(entry, entropy=entropy)


def test_encapsulations_share_a_packed_template_and_differ_in_their_entropy() -> None:
    driver = KernelNullDriver()
    pas = {PA_A: PaConfig(PA_A, 24, None, None, "up0")}
    builder = EntryBuilder(driver, lambda: pas, {"vm1": 10}.get)
    for entropy in (50000, 1, 65535, 0, 50000):
        e = _encap(entropy)
        built = builder.build(e)
        assert built is not None
        assert e.encap is not None
        fresh = entries.encap_flow(e.encap.template.header, entropy=entropy, uplink_ifindex=2,
                                   mtu=1600)  # fmt: skip
        assert FlowEntry.unpack(built.entry) == fresh
    driver.mtus["up0"] = 1400  # an uplink's MTU changed: seen once the builder forgets
    built = builder.build(_encap(7))
    assert built is not None
    assert FlowEntry.unpack(built.entry).mtu == 1600
    builder.forget()
    built = builder.build(_encap(7))
    assert built is not None
    assert FlowEntry.unpack(built.entry).mtu == 1400
