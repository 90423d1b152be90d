"""The kernel meters' parameters: ``PortLimits`` packed into ``struct hnv_meter``.

The socket filters run a generic cell rate algorithm on these numbers (hnv.h,
``hnv_conforms``); ``_gcra`` below is that algorithm written again from its comment, so
the tests can ask what the kernel would admit under the packed parameters and compare
it with the engine's own ``TokenBucket`` under the same limits.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openhnv.vfp.limits import DEFAULT_LIMITS, NO_LIMITS, PortLimits, TokenBucket
from openhnv.vswitch.fastpath.layout import Bucket, Meter, MeterDrops, MeterKind, c_layout
from openhnv.vswitch.fastpath.meters import (
    NS_PER_SECOND,
    OFF,
    bucket_of,
    drops_of,
    meter_of,
    metered,
)


def _gcra(bucket: Bucket, arrivals_ns: list[int]) -> int:
    """How many of ``arrivals_ns`` (ascending) the kernel lets through."""
    if not bucket.interval_ns:
        return len(arrivals_ns)
    tat = bucket.tat_ns
    admitted = 0
    for now in arrivals_ns:
        tat = max(tat, now)
        if tat > now + bucket.tolerance_ns:
            continue
        tat += bucket.interval_ns
        admitted += 1
    return admitted


def _token_bucket(rate: float, burst: int, arrivals_ns: list[int]) -> int:
    bucket = TokenBucket(rate, burst, 0.0)
    return sum(bucket.take(t / NS_PER_SECOND) for t in arrivals_ns)


def test_the_default_limits_known_answer() -> None:
    meter = meter_of(DEFAULT_LIMITS)
    new_flow, broadcast, arp = meter.buckets
    # 500/s, burst 1,000: 2 ms a frame, 999 frames ahead of the rate
    assert new_flow == Bucket(interval_ns=2_000_000, tolerance_ns=999 * 2_000_000, tat_ns=0)
    assert broadcast == Bucket(interval_ns=5_000_000, tolerance_ns=399 * 5_000_000, tat_ns=0)
    assert arp == Bucket(interval_ns=20_000_000, tolerance_ns=99 * 20_000_000, tat_ns=0)
    assert meter.dropped == MeterDrops(0, 0, 0)


def test_the_packed_meter_is_the_c_layout() -> None:
    assert Bucket.size() == 24
    assert Meter.size() == 96
    places = {p.name: (p.offset, p.size) for p in c_layout(Meter)}
    assert places == {"buckets": (0, 72), "dropped": (72, 24)}
    packed = meter_of(DEFAULT_LIMITS).pack()
    # kinds in the order of enum hnv_meter_kind: the new-flow bucket first
    assert int.from_bytes(packed[0:8], "little") == 2_000_000
    assert int.from_bytes(packed[MeterKind.ARP * 24 : MeterKind.ARP * 24 + 8], "little") == (
        20_000_000
    )
    assert Meter.unpack(packed) == meter_of(DEFAULT_LIMITS)


def test_a_limit_turned_off_is_an_empty_bucket() -> None:
    assert meter_of(NO_LIMITS).buckets == (OFF, OFF, OFF)
    assert not metered(NO_LIMITS)
    assert metered(PortLimits(new_flow_rate=0, broadcast_rate=0, arp_rate=5, arp_burst=10))
    assert _gcra(OFF, list(range(1000))) == 1000


def test_a_burst_then_the_rate() -> None:
    bucket = bucket_of(500.0, 1000)
    # 5,000 frames in the same microsecond: the burst
    assert _gcra(bucket, [10**9] * 5000) == 1000
    # 100k frames a second for two seconds from rest: the burst plus two seconds of rate
    flood = [10**9 + i * 10_000 for i in range(200_000)]
    assert _gcra(bucket, flood) == pytest.approx(1000 + 2 * 500, abs=2)


@given(
    rate=st.floats(min_value=1.0, max_value=100_000.0),
    burst=st.integers(min_value=1, max_value=5_000),
    gaps=st.lists(st.integers(min_value=0, max_value=50_000_000), min_size=1, max_size=400),
)
def test_the_kernel_admits_what_the_engine_would(rate: float, burst: int, gaps: list[int]) -> None:
    """Under the same limits the kernel's bucket and the engine's admit the same frames
    (up to one: the kernel's interval is rounded to a nanosecond)."""
    arrivals, now = [], NS_PER_SECOND
    for gap in gaps:
        now += gap
        arrivals.append(now)
    kernel = _gcra(bucket_of(rate, burst), arrivals)
    engine = _token_bucket(rate, burst, arrivals)
    assert abs(kernel - engine) <= 1


def test_drops_are_named_by_the_engines_reasons() -> None:
    meter = Meter(meter_of(DEFAULT_LIMITS).buckets, MeterDrops(new_flow=7, broadcast=0, arp=2))
    assert drops_of(meter) == {"new_flow_rate": 7, "arp_rate": 2}
