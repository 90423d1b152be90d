"""The QoS layer: byte buckets, and the engine policing a capped port (clock passed in)."""

from __future__ import annotations

from collections import Counter

import pytest
from vfp_frames import MAC_A, MAC_B, PA_A, PA_B, VM1, VM2, VM5, eth, host, ipv4, udp

from openhnv.vfp import commands as c
from openhnv.vfp.emits import UPLINK, Deliver, Drop, Emit, Transmit
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.limits import TokenBucket
from openhnv.vfp.qos import (
    BYTES_PER_MBIT,
    MAX_MBPS,
    MIN_BURST_BYTES,
    QosSettings,
    burst_of,
    shaper_burst_of,
)

FRAME_BYTES = 1000


def frame(src: tuple[object, ...], dst: tuple[object, ...], sport: int = 7000) -> bytes:
    """A UDP frame of exactly ``FRAME_BYTES`` from VM ``src`` to VM ``dst``."""
    payload = b"q" * (FRAME_BYTES - 14 - 20 - 8)
    packet = ipv4(str(src[2]), str(dst[2]), 17, udp(sport, 9000, payload))
    built = eth(str(dst[1]), str(src[1]), 0x0800, packet)
    assert len(built) == FRAME_BYTES
    return built


def capped(engine: VfpEngine, vm: tuple[object, ...], qos: QosSettings) -> None:
    """Re-add ``vm``'s port with ``qos`` (policy and flows are kept)."""
    name, mac, ip, vsid, rdid = (str(vm[0]), str(vm[1]), str(vm[2]), int(vm[3]), str(vm[4]))  # type: ignore[call-overload]
    engine.programming.apply(c.AddPort(name, mac, vsid, rdid, (ip,), qos=qos))


def kinds(emits: list[Emit]) -> Counter[str]:
    return Counter(e.reason if isinstance(e, Drop) else type(e).__name__ for e in emits)


# -- the bucket -------------------------------------------------------------------------
def test_a_bucket_starts_full_spends_bytes_and_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=1000.0, burst=1500, now=10.0)
    assert bucket.take(10.0, 1500)
    assert not bucket.take(10.0, 1)  # empty: nothing spent
    assert not bucket.take(10.5, 600)  # 500 bytes came back
    assert bucket.take(10.5, 500)
    assert bucket.take(100.0, 1500)  # refilled to the burst, never beyond
    assert not bucket.take(100.0, 1)


def test_a_frame_larger_than_what_the_bucket_holds_spends_nothing() -> None:
    bucket = TokenBucket(rate=100.0, burst=1000, now=0.0)
    assert not bucket.take(0.0, 1001)
    assert bucket.take(0.0, 1000)


def test_a_clock_that_goes_back_adds_nothing() -> None:
    bucket = TokenBucket(rate=1000.0, burst=1000, now=5.0)
    assert bucket.take(5.0, 1000)
    assert not bucket.take(4.0, 1)
    assert not bucket.take(5.0, 1)
    assert bucket.take(6.0, 1000)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 10), (-1.0, 10), (10.0, 0)])
def test_a_bucket_needs_a_positive_rate_and_burst(rate: float, burst: int) -> None:
    with pytest.raises(PolicyError):
        TokenBucket(rate, burst, 0.0)


def test_bursts_are_fractions_of_a_second_and_never_below_two_gso_frames() -> None:
    assert burst_of(1) == MIN_BURST_BYTES
    assert burst_of(10_000) == 10_000 * BYTES_PER_MBIT // 4
    assert shaper_burst_of(1) == MIN_BURST_BYTES
    assert shaper_burst_of(10_000) == 10_000 * BYTES_PER_MBIT * 4 // 1000
    assert burst_of(MAX_MBPS) < 2**64 // 10**9  # the kernel's refill stays within 64 bits


@pytest.mark.parametrize("mbps", [-1, MAX_MBPS + 1, True, 1.5])
def test_settings_refuse_caps_outside_the_range(mbps: object) -> None:
    with pytest.raises(PolicyError, match="outbound_max_mbps"):
        QosSettings(outbound_max_mbps=mbps)  # type: ignore[arg-type]


# -- the layer in the engine ------------------------------------------------------------
def test_outbound_cap_drops_what_the_bucket_cannot_hold_cached_flow_or_not() -> None:
    engine = host(PA_A, MAC_A)
    capped(engine, VM1, QosSettings(outbound_max_mbps=1))
    burst_frames = MIN_BURST_BYTES // FRAME_BYTES  # 131
    out = engine.process_batch("vm1", [frame(VM1, VM2)] * 200, 0.0)
    assert kinds(out) == {"Transmit": burst_frames, "qos_outbound": 200 - burst_frames}
    # one second later: one second of the rate (125,000 bytes), the flow hits its cache
    out = engine.process_batch("vm1", [frame(VM1, VM2)] * 200, 1.0)
    assert kinds(out) == {"Transmit": BYTES_PER_MBIT // FRAME_BYTES, "qos_outbound": 75}
    counters = engine.listing.counters("vm1")
    assert counters["drop:qos_outbound"] == 200 - burst_frames + 75


def test_a_capped_port_does_not_slow_another_port() -> None:
    engine = host(PA_A, MAC_A)
    capped(engine, VM1, QosSettings(outbound_max_mbps=1, inbound_max_mbps=1))
    out = engine.process_batch("vm5", [frame(VM5, VM2)] * 500, 0.0)
    assert kinds(out) == {"Transmit": 500}
    assert "drop:qos_outbound" not in engine.listing.counters("vm5")


def test_inbound_cap_polices_local_delivery_at_the_receiving_port() -> None:
    engine = host(PA_A, MAC_A)
    capped(engine, VM5, QosSettings(inbound_max_mbps=1))
    out = engine.process_batch("vm1", [frame(VM1, VM5)] * 200, 0.0)
    burst_frames = MIN_BURST_BYTES // FRAME_BYTES
    assert kinds(out) == {"Deliver": burst_frames, "qos_inbound": 200 - burst_frames}
    assert engine.listing.counters("vm5")["drop:qos_inbound"] == 200 - burst_frames
    assert "drop:qos_outbound" not in engine.listing.counters("vm1")


def test_inbound_cap_polices_frames_from_the_uplink_after_decapsulation() -> None:
    sender, receiver = host(PA_B, MAC_B), host(PA_A, MAC_A)
    capped(receiver, VM1, QosSettings(inbound_max_mbps=1))
    sent = sender.process_batch("vm2", [frame(VM2, VM1)] * 200, 0.0)
    tunnel = [e.frame for e in sent if isinstance(e, Transmit)]
    assert len(tunnel) == 200
    out = receiver.process_batch(UPLINK, tunnel, 0.0)
    delivered = [e for e in out if isinstance(e, Deliver)]
    # the inner frame is what is metered: the outer headers are not the tenant's
    assert len(delivered) == MIN_BURST_BYTES // FRAME_BYTES
    assert all(len(e.frame) == FRAME_BYTES for e in delivered)
    assert receiver.listing.counters("vm1")["drop:qos_inbound"] == 200 - len(delivered)
    out = receiver.process_batch(UPLINK, tunnel[:10], 10.0)  # refilled: cached flow passes
    assert kinds(out) == {"Deliver": 10}


def test_revalidation_replays_spend_no_bandwidth() -> None:
    engine = host(PA_A, MAC_A)
    capped(engine, VM5, QosSettings(inbound_max_mbps=1))
    engine.process("vm1", frame(VM1, VM5), 0.0)
    heads = list(engine.state.ports["vm1"].outbound.flows.values())
    for _ in range(500):  # 500 replays of a delivered flow: no byte is counted
        engine.revalidate(heads, 0.0)
    out = engine.process_batch("vm1", [frame(VM1, VM5)] * 130, 0.0)
    assert kinds(out) == {"Deliver": 130}


def test_the_same_caps_keep_the_bucket_and_new_caps_start_a_full_one() -> None:
    engine = host(PA_A, MAC_A)
    capped(engine, VM1, QosSettings(outbound_max_mbps=1))
    engine.process_batch("vm1", [frame(VM1, VM2)] * 200, 0.0)  # empties the bucket
    capped(engine, VM1, QosSettings(outbound_max_mbps=1))  # a replan with the same caps
    assert kinds(engine.process("vm1", frame(VM1, VM2), 0.0)) == {"qos_outbound": 1}
    capped(engine, VM1, QosSettings(outbound_max_mbps=2))
    assert kinds(engine.process("vm1", frame(VM1, VM2), 0.0)) == {"Transmit": 1}
    capped(engine, VM1, QosSettings())  # no cap: no layer
    out = engine.process_batch("vm1", [frame(VM1, VM2)] * 1000, 0.0)
    assert kinds(out) == {"Transmit": 1000}


def test_listings_show_the_qos_layer_of_a_capped_port_only() -> None:
    engine = host(PA_A, MAC_A)
    capped(engine, VM1, QosSettings(outbound_max_mbps=50))
    layers = engine.listing.layers("vm1")
    assert layers[0]["name"] == "QOS"
    assert layers[0]["default_outbound"] == "police(50 Mbit/s)"
    assert layers[0]["default_inbound"] == "allow"
    assert engine.listing.layers("vm5")[0]["name"] != "QOS"
    ports = {p["name"]: p for p in engine.listing.ports()}
    assert ports["vm1"]["qos_outbound_mbps"] == 50
    assert ports["vm5"]["qos_outbound_mbps"] == 0


def test_exactly_a_burst_passes_at_once() -> None:
    engine = host(PA_A, MAC_A)
    capped(engine, VM1, QosSettings(outbound_max_mbps=1))
    out = engine.process_batch("vm1", [frame(VM1, VM2)] * 131, 0.0)
    assert all(isinstance(e, Transmit) for e in out)
