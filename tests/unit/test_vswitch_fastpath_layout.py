"""The Python mirror of the fast path's structs against the C object's BTF, and bytes.

The object (``make bpf``) is opened, not loaded: no privilege is needed to read its
BTF. Every mirrored struct must have the C size and each field the C offset and size;
the counter numbers must be the C enum's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openhnv.vswitch.fastpath import libbpf
from openhnv.vswitch.fastpath.fastpath import MIRRORED, layout_mismatches, opened_object
from openhnv.vswitch.fastpath.layout import (
    MAX_GENERATIONS,
    STATS_OFFSET,
    Counter,
    CStruct,
    FlowEntry,
    FlowStats,
    FlowTuple,
    GenerationRef,
    PortKey,
    UplinkKey,
    c_layout,
)


@pytest.fixture(scope="module")
def obj() -> Iterator[int]:
    with opened_object() as opened:
        yield opened


@pytest.mark.parametrize("cls", MIRRORED, ids=lambda c: c.C_NAME)
def test_struct_matches_the_c_declaration(obj: int, cls: type[CStruct]) -> None:
    members = libbpf.btf_struct(obj, cls.C_NAME)
    assert members[""][1] == cls.size()
    for place in c_layout(cls):
        assert members[place.name] == (place.offset, place.size), place.name


def test_counter_numbers_are_the_c_enum(obj: int) -> None:
    enum = libbpf.btf_enum(obj, "hnv_counter")
    assert enum.pop("HNV_COUNTER_MAX") == len(Counter)
    assert enum == {f"HNV_{c.name}": c.value for c in Counter}


def test_the_loader_finds_no_mismatch(obj: int) -> None:
    assert layout_mismatches(obj) == []


def test_known_sizes() -> None:
    assert (FlowTuple.size(), PortKey.size(), UplinkKey.size()) == (28, 32, 44)
    assert (GenerationRef.size(), FlowStats.size(), FlowEntry.size()) == (8, 24, 120)
    assert STATS_OFFSET == 96


def test_port_key_bytes_known_answer() -> None:
    key = PortKey(7, FlowTuple(b"\x02\0\0\0\x01\x0c", b"\x02\0\0\0\x01\x0b", bytes([10, 0, 0, 11]),
                               bytes([10, 0, 0, 12]), 40000, 7000, 17))  # fmt: skip
    expected = (
        (7).to_bytes(4, "little")  # ifindex, host order
        + bytes.fromhex("02000000010c")  # inner destination MAC
        + bytes.fromhex("02000000010b")  # inner source MAC
        + bytes([10, 0, 0, 11])  # source IPv4, wire order
        + bytes([10, 0, 0, 12])  # destination IPv4
        + (40000).to_bytes(2, "little")  # source port, host order
        + (7000).to_bytes(2, "little")  # destination port
        + b"\x11"  # protocol UDP
        + b"\0\0\0"  # pad
    )
    assert key.pack() == expected
    assert PortKey.unpack(expected) == key


macs = st.binary(min_size=6, max_size=6)
ips = st.binary(min_size=4, max_size=4)
u8, u16, u32, u64 = (st.integers(0, 2**n - 1) for n in (8, 16, 32, 64))
tuples = st.builds(FlowTuple, macs, macs, ips, ips, u16, u16, u8)
generations = st.builds(GenerationRef, u32, u32)
entries = st.builds(
    FlowEntry, u8, u8, u8, u8, u32, u16, u16, u16, u16,
    st.tuples(*[generations] * MAX_GENERATIONS), macs, macs, st.binary(min_size=52, max_size=52),
    st.builds(FlowStats, u64, u64, u64),
)  # fmt: skip


@given(st.builds(PortKey, u32, tuples))
def test_port_key_round_trip(key: PortKey) -> None:
    assert PortKey.unpack(key.pack()) == key


@given(st.builds(UplinkKey, ips, ips, u32, u16, u8, tuples))
def test_uplink_key_round_trip(key: UplinkKey) -> None:
    assert len(key.pack()) == UplinkKey.size()
    assert UplinkKey.unpack(key.pack()) == key


@given(entries)
def test_flow_entry_round_trip(entry: FlowEntry) -> None:
    packed = entry.pack()
    assert FlowEntry.unpack(packed) == entry
    assert FlowStats.unpack(packed[STATS_OFFSET:]) == entry.stats
