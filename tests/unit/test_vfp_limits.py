"""The abuse limits' meter: the token bucket and the per-port buckets (vfp.limits)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openhnv.vfp.errors import PolicyError
from openhnv.vfp.limits import (
    ARP_RATE,
    BROADCAST_RATE,
    NEW_FLOW_RATE,
    NO_LIMITS,
    OVER_RATE_PAUSE,
    PortLimits,
    PortMeter,
    TokenBucket,
)


def takes(bucket: TokenBucket, n: int, now: float) -> int:
    return sum(bucket.take(now) for _ in range(n))


def test_a_bucket_starts_full_and_empties_at_its_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=5, now=0.0)
    assert takes(bucket, 8, 0.0) == 5


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=5, now=0.0)
    takes(bucket, 5, 0.0)
    assert takes(bucket, 10, 0.3) == 3  # 0.3 s at 10/s
    assert takes(bucket, 10, 100.0) == 5  # a long pause refills only to the burst


def test_a_clock_that_goes_back_adds_nothing() -> None:
    bucket = TokenBucket(rate=4.0, burst=2, now=5.0)
    takes(bucket, 2, 5.0)
    assert not bucket.take(4.0)
    assert not bucket.take(5.125)  # half a token since the last time it moved forward
    assert bucket.take(5.25)


@given(
    rate=st.floats(min_value=0.5, max_value=1e5),
    burst=st.integers(min_value=1, max_value=1000),
    steps=st.lists(st.floats(min_value=0.0, max_value=2.0), max_size=50),
)
def test_a_bucket_never_grants_more_than_its_burst_plus_rate_times_time(
    rate: float, burst: int, steps: list[float]
) -> None:
    bucket = TokenBucket(rate, burst, 0.0)
    now, granted = 0.0, 0
    for step in steps:
        now += step
        granted += takes(bucket, 100, now)
    assert granted <= burst + rate * now + 1e-6


@pytest.mark.parametrize(("rate", "burst", "field"), [(0.0, 1, "rate"), (1.0, 0, "burst")])
def test_a_bucket_refuses_a_rate_or_burst_it_cannot_meter(
    rate: float, burst: int, field: str
) -> None:
    with pytest.raises(PolicyError) as err:
        TokenBucket(rate, burst, 0.0)
    assert err.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_flows": 0}, "max_flows"),
        ({"new_flow_rate": -1.0}, "new_flow_rate"),
        ({"broadcast_rate": 5.0, "broadcast_burst": 0}, "broadcast_burst"),
    ],
)
def test_limits_name_the_field_they_refuse(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(PolicyError) as err:
        PortLimits(**kwargs)  # type: ignore[arg-type]
    assert err.value.field == field


def test_a_meter_charges_arp_broadcast_and_new_flows_to_their_own_buckets() -> None:
    limits = PortLimits(new_flow_rate=1.0, new_flow_burst=2, broadcast_rate=1.0,
                        broadcast_burst=1, arp_rate=1.0, arp_burst=1)  # fmt: skip
    meter = PortMeter(limits, 0.0)
    assert meter.admit_miss(group=True, arp=True, now=0.0) is None
    assert meter.admit_miss(group=True, arp=True, now=0.0) == ARP_RATE
    assert meter.admit_miss(group=True, arp=False, now=0.0) is None  # ARP took none of it
    assert meter.admit_miss(group=True, arp=False, now=0.0) == BROADCAST_RATE
    assert [meter.admit_miss(group=False, arp=False, now=0.0) for _ in range(3)] == [
        None, None, NEW_FLOW_RATE,
    ]  # fmt: skip
    assert meter.admit_miss(group=False, arp=False, now=1.0) is None


def test_limits_that_are_off_admit_everything() -> None:
    meter = PortMeter(NO_LIMITS, 0.0)
    assert all(meter.admit_miss(g, a, 0.0) is None for g in (False, True) for a in (False, True)
               for _ in range(10_000))  # fmt: skip
    assert meter.admits_flow(10**9)
    assert not PortMeter(PortLimits(max_flows=3), 0.0).admits_flow(3)


def test_a_meter_asks_for_a_pause_once_after_it_went_over_a_rate() -> None:
    meter = PortMeter(PortLimits(new_flow_rate=1.0, new_flow_burst=1), 0.0)
    assert meter.admit_miss(group=False, arp=False, now=0.0) is None
    assert meter.pause() == 0.0
    assert meter.admit_miss(group=False, arp=False, now=0.0) == NEW_FLOW_RATE
    assert meter.pause() == OVER_RATE_PAUSE
    assert meter.pause() == 0.0
