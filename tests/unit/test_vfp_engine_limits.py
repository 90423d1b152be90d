"""The engine under abuse limits: a flooding port is dropped and counted, the others are not."""

from __future__ import annotations

from collections import Counter

from vfp_frames import (
    MAC_A,
    PA_A,
    VM1,
    VM2,
    VM5,
    arp_request,
    host,
    tcp_frame,
    udp_frame,
)

from openhnv.vfp.emits import Deliver, Drop, Emit, Punt, Transmit
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.limits import NO_LIMITS, PortLimits

OFF = {"new_flow_rate": 0.0, "broadcast_rate": 0.0, "arp_rate": 0.0, "max_flows": None}


def limited(**kwargs: float | int | None) -> VfpEngine:
    engine = host(PA_A, MAC_A)
    engine.set_limits(PortLimits(**{**OFF, **kwargs}))  # type: ignore[arg-type]
    return engine


def syn(sport: int, src: tuple[object, ...] = VM1, dst: tuple[object, ...] = VM2) -> bytes:
    return tcp_frame(str(src[1]), str(dst[1]), str(src[2]), str(dst[2]), sport, 80)


def kinds(emits: list[Emit]) -> Counter[str]:
    return Counter(e.reason if isinstance(e, Drop) else type(e).__name__ for e in emits)


def test_new_flows_beyond_the_port_limit_are_dropped_and_existing_flows_keep_working() -> None:
    engine = limited(max_flows=3)
    out = engine.process_batch("vm1", [syn(1000 + i) for i in range(5)], 0.0)
    assert kinds(out) == {"Transmit": 3, "flow_limit": 2}
    counters = engine.listing.counters("vm1")
    assert counters["drop:flow_limit"] == 2
    assert counters["flows"] == 3
    assert isinstance(engine.process("vm1", syn(1001), 0.1)[0], Transmit)  # still a hit


def test_flows_are_admitted_again_once_flows_expire() -> None:
    engine = limited(max_flows=2)
    engine.process_batch("vm1", [syn(1000), syn(1001)], 0.0)
    assert engine.process("vm1", syn(1002), 0.0) == [Drop("vm1", "flow_limit")]
    engine.expire(1000.0)
    assert isinstance(engine.process("vm1", syn(1002), 1000.0)[0], Transmit)


def test_the_reply_flow_of_an_admitted_connection_is_admitted_at_the_limit() -> None:
    engine = limited(max_flows=1)
    engine.process("vm5", syn(2000, VM5, VM1), 0.0)  # vm5 opens toward vm1
    engine.process("vm1", syn(1000), 0.0)  # vm1 fills its limit
    synack = tcp_frame(VM1[1], VM5[1], VM1[2], VM5[2], 80, 2000, flags=0x12)
    out = engine.process("vm1", synack, 0.0)
    assert [type(e) for e in out] == [Deliver]
    assert "drop:flow_limit" not in engine.listing.counters("vm1")


def test_a_new_flow_flood_is_metered_per_port_and_other_ports_keep_their_new_flows() -> None:
    engine = limited(new_flow_rate=100.0, new_flow_burst=50)
    flood = engine.process_batch("vm1", [syn(1000 + i) for i in range(1000)], 0.0)
    assert kinds(flood) == {"Transmit": 50, "new_flow_rate": 950}
    others = engine.process_batch("vm5", [syn(3000 + i, VM5, VM2) for i in range(20)], 0.0)
    assert kinds(others) == {"Transmit": 20}
    # the flooder's established flows still hit its table; a second later a burst of new ones
    assert kinds(engine.process_batch("vm1", [syn(1000 + i) for i in range(50)], 0.5)) == {
        "Transmit": 50
    }
    later = engine.process_batch("vm1", [syn(5000 + i) for i in range(200)], 1.0)
    assert kinds(later) == {"Transmit": 50, "new_flow_rate": 150}  # refilled to the burst
    assert engine.listing.counters("vm1")["drop:new_flow_rate"] == 1100
    assert "drop:new_flow_rate" not in engine.listing.counters("vm5")


def test_broadcasts_and_arp_are_metered_apart() -> None:
    engine = limited(broadcast_rate=10.0, broadcast_burst=3, arp_rate=10.0, arp_burst=2)
    bcast = udp_frame(VM1[1], "ff:ff:ff:ff:ff:ff", VM1[2], "10.1.1.255", 5000, 500)
    arp = arp_request(VM1[1], VM1[2], VM2[2])
    out = engine.process_batch("vm1", [bcast] * 5 + [arp] * 5, 0.0)
    dropped = kinds([e for e in out if isinstance(e, Drop)])
    assert dropped == {"broadcast_rate": 2, "arp_rate": 3}
    assert sum(isinstance(e, Punt) for e in out) == 2
    counters = engine.listing.counters("vm1")
    assert (counters["drop:broadcast_rate"], counters["drop:arp_rate"]) == (2, 3)
    assert counters["punt:arp"] == 2


def test_without_limits_nothing_is_metered() -> None:
    engine = host(PA_A, MAC_A)
    engine.set_limits(NO_LIMITS)
    out = engine.process_batch("vm1", [syn(1000 + i) for i in range(500)], 0.0)
    assert kinds(out) == {"Transmit": 500}


def test_revalidation_after_a_policy_change_is_not_metered() -> None:
    engine = limited(new_flow_rate=1.0, new_flow_burst=5)
    engine.process_batch("vm1", [syn(1000 + i) for i in range(5)], 0.0)
    port = engine.state.port("vm1")
    port.changed()  # every flow is stale: its next packet is decided again
    out = engine.process_batch("vm1", [syn(1000 + i) for i in range(5)], 0.0)
    assert kinds(out) == {"Transmit": 5}
