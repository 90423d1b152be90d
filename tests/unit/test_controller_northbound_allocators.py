"""Allocators: never a value in use, from the high-water mark, wrapping at the end."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from openhnv.controller.northbound.allocators import allocate, allocate_vsid, usable_hosts


@given(
    st.lists(st.tuples(st.integers(0, 50), st.integers(0, 20)), min_size=1, max_size=4),
    st.sets(st.integers(0, 260)),
    st.none() | st.integers(0, 260),
)
def test_allocate_returns_a_free_value_in_range(
    spans: list[tuple[int, int]], in_use: set[int], hint: int | None
) -> None:
    ranges, low = [], 0
    for gap, size in spans:  # ascending, disjoint ranges
        ranges.append((low + gap, low + gap + size))
        low += gap + size + 1
    values = {v for low, high in ranges for v in range(low, high + 1)}
    got = allocate(ranges, in_use, hint)
    if values <= in_use:
        assert got is None
    else:
        assert got in values
        assert got not in in_use


def test_high_water_mark_and_wrap() -> None:
    assert allocate([(10, 14)], set(), None) == 10
    assert allocate([(10, 14)], {12}, 12) == 13
    assert allocate([(10, 14)], {14}, 14) == 10
    assert allocate([(10, 11), (20, 21)], set(), 12) == 20
    assert allocate([(10, 11)], {10, 11}, None) is None


def test_vsid_bounds() -> None:
    assert allocate_vsid(set(), None) == 4096
    assert allocate_vsid(set(), 2**24 - 2) == 2**24 - 2
    assert allocate_vsid({2**24 - 2}, 2**24 - 2) == 4096


def test_usable_hosts_skip_network_router_and_broadcast() -> None:
    low, high = usable_hosts("10.1.1.0/24")
    assert (low & 0xFF, high & 0xFF) == (2, 254)
