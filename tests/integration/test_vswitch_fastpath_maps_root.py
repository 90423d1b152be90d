"""The fast path's maps through ``FastPath``: entries, statistics, generations, counters.

Loads the object into the kernel (root), attaches nothing: no traffic, no namespace.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openhnv.vswitch.fastpath import entries
from openhnv.vswitch.fastpath.errors import FastPathError
from openhnv.vswitch.fastpath.fastpath import FastPath
from openhnv.vswitch.fastpath.layout import NO_STATS, Counter, FlowTuple, PortKey, UplinkKey

pytestmark = [pytest.mark.root, pytest.mark.fastpath]


@pytest.fixture
def fp() -> Iterator[FastPath]:
    with FastPath.load(flow_capacity=4096, generation_slots=16) as loaded:
        yield loaded


def _key(n: int) -> PortKey:
    return PortKey(3, FlowTuple(b"\x02" * 6, b"\x04" * 6, b"\x0a\0\0\x01", b"\x0a\0\0\x02",
                                n % 65536, 80, 6))  # fmt: skip


def test_entries_are_set_read_and_deleted(fp: FastPath) -> None:
    key = _key(1)
    entry = entries.deliver_flow(9, generations=[(2, 1)])
    assert fp.port_flows.get(key) is None
    fp.port_flows.set(key, entry)
    assert fp.port_flows.get(key) == entry
    with pytest.raises(FastPathError, match="already has an entry"):
        fp.port_flows.set(key, entry, only_new=True)
    assert list(fp.port_flows.items()) == [(key, entry)]
    assert fp.port_flows.stats() == {key: NO_STATS}
    assert fp.port_flows.delete(key)
    assert not fp.port_flows.delete(key)
    assert len(fp.port_flows) == 0


def test_statistics_of_many_entries_are_read_in_batches(fp: FastPath) -> None:
    keys = [_key(n) for n in range(3000)]
    entry = entries.deliver_flow(9)
    for key in keys:
        fp.port_flows.set(key, entry)
    stats = fp.port_flows.stats()
    assert set(stats) == set(keys)
    assert len(fp.port_flows) == 3000


def test_uplink_entries_are_their_own_table(fp: FastPath) -> None:
    key = UplinkKey(b"\xc0\xa8\x01\x0b", b"\xc0\xa8\x01\x0a", 5001, 0, 1, _key(1).flow)
    fp.uplink_flows.set(key, entries.decap_deliver_flow(4))
    assert fp.uplink_flows.get(key) is not None
    assert len(fp.port_flows) == 0


def test_a_full_table_is_an_error_naming_the_map() -> None:
    with FastPath.load(flow_capacity=2) as small:
        small.port_flows.set(_key(1), entries.deliver_flow(9))
        small.port_flows.set(_key(2), entries.deliver_flow(9))
        with pytest.raises(FastPathError, match="hnv_port_flows: full"):
            small.port_flows.set(_key(3), entries.deliver_flow(9))


def test_generations_are_set_bumped_and_bounded(fp: FastPath) -> None:
    assert fp.generations.get(15) == 0
    fp.generations.set(15, 0xFFFFFFFF)
    assert fp.generations.bump(15) == 0
    with pytest.raises(FastPathError, match="slot 16"):
        fp.generations.set(16, 1)


def test_counters_start_at_zero_by_name(fp: FastPath) -> None:
    assert fp.counters.read() == {c.name.lower(): 0 for c in Counter}


def test_a_closed_fast_path_touches_no_descriptor() -> None:
    fp = FastPath.load(flow_capacity=4)
    table = fp.port_flows
    fp.close()
    fp.close()  # idempotent
    with pytest.raises(FastPathError, match="hnv_port_flows"):
        table.get(_key(1))
