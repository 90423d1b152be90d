"""HostSwitch: the engine's emits carried out through a driver, the listener, the
programming it refuses, expiry. Its parts have their own tests: the PA side
(test_vswitch_switch_pas), the abuse limits (test_vswitch_switch_limits)."""

from __future__ import annotations

import threading

import pytest
from switch_fixtures import Agent, host_switch
from vfp_frames import (
    ALL_VMS,
    MAC_B,
    PA_A,
    PA_B,
    ROUTER,
    VM1,
    VM2,
    VM4,
    VM5,
    arp_request,
    mac,
    udp_frame,
)

from openhnv.vfp import commands as c
from openhnv.vfp.emits import UPLINK
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.limits import PortLimits
from openhnv.vfp.spaces import Mapping, ProviderAddress
from openhnv.vswitch.errors import VSwitchError
from openhnv.vswitch.null import NullDriver
from openhnv.vswitch.switch import HostSwitch, PaConfig


def test_ports_reported_before_and_after_start_reach_the_listener() -> None:
    driver = NullDriver()
    sw = HostSwitch(VfpEngine(), driver, expire_interval=None)
    driver.inject_port("early", "02:00:00:00:00:0A")
    agent = Agent()
    sw.set_listener(agent)
    sw.start()
    driver.inject_port("late", "02:00:00:00:00:0b")
    assert agent.added == [("early", "02:00:00:00:00:0a"), ("late", "02:00:00:00:00:0b")]
    assert sw.ports() == {"early": "02:00:00:00:00:0a", "late": "02:00:00:00:00:0b"}
    later = Agent()  # a listener set afterwards hears of the ports already there
    sw.set_listener(later)
    assert later.added == agent.added
    driver.remove_port("early")
    assert later.removed == ["early"]
    assert agent.removed == []
    assert sw.ports() == {"late": "02:00:00:00:00:0b"}
    sw.stop()
    sw.stop()
    assert (driver.opened, driver.closed) == (1, 1)


def test_a_frame_to_a_local_vm_is_delivered_through_the_driver() -> None:
    _sw, driver = host_switch(PA_A)
    frame = udp_frame(VM1[1], VM5[1], VM1[2], VM5[2])
    driver.inject_from_port("vm1", frame)
    driver.inject_from_port("vm1", frame)  # fast path
    assert driver.take_sent("vm5") == [frame, frame]
    assert driver.take_transmitted() == []


def test_two_switches_carry_a_frame_from_vm_to_vm() -> None:
    _a, a_driver = host_switch(PA_A)
    b, b_driver = host_switch(PA_B)
    a_driver.inject_neighbor(PA_B, MAC_B)
    frame = udp_frame(VM1[1], ROUTER, VM1[2], VM4[2])  # routed to the other subnet
    a_driver.inject_from_port("vm1", frame)
    (tx,) = a_driver.take_transmitted()
    b_driver.inject_from_uplink(tx.frame)
    (got,) = b_driver.take_sent("vm4")
    assert got[0:6] == mac(VM4[1])
    assert got[6:12] == mac(ROUTER)
    assert got[22] == frame[22] - 1  # TTL decremented by the distributed router
    assert b.inspect(lambda e: e.listing.counters(UPLINK))["packets_in"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("10.0.0.300", 24, None, None, "up0"), "not an IPv4"),
        (("10.0.0.1", 33, None, None, "up0"), "prefix length"),
        (("10.0.0.1", 24, 4095, None, "up0"), "vlan_id"),
        (("10.0.0.1", 24, None, "10.0.1.1", "up0"), "gateway 10.0.1.1"),
        (("10.0.0.1", 24, None, "10.0.0.1", "up0"), "gateway"),
        (("10.0.0.1", 24, None, None, " "), "interface"),
    ],
)
def test_a_bad_pa_configuration_names_what_is_wrong(
    args: tuple[str, int, int | None, str | None, str], message: str
) -> None:
    with pytest.raises(VSwitchError, match=message):
        PaConfig(*args)


def test_arp_from_a_vm_is_punted_to_the_listener_which_may_answer() -> None:
    sw, driver = host_switch(PA_A)
    agent = Agent(sw)
    sw.set_listener(agent)
    request = arp_request(VM1[1], VM1[2], VM5[2])
    driver.inject_from_port("vm1", request)
    assert agent.punts == [("vm1", request, "arp")]
    assert driver.take_sent("vm1") == [b"reply:" + request[:6]]


def test_punts_without_a_listener_are_counted() -> None:
    sw, driver = host_switch(PA_A)
    driver.inject_from_port("vm1", arp_request(VM1[1], VM1[2], VM5[2]))
    assert sw.counters["drop:no_listener"] == 1


def test_a_frame_from_a_port_not_programmed_yet_is_counted_and_dropped() -> None:
    sw, driver = host_switch(PA_A)
    driver.inject_port("newcomer", "02:00:00:00:99:99")
    driver.inject_from_port("newcomer", udp_frame("02:00:00:00:99:99", VM5[1], "10.9.9.9", VM5[2]))
    assert sw.counters["drop:unprogrammed_port"] == 1
    assert driver.sent == {}


def test_pa_commands_are_refused_and_a_bad_command_stops_the_batch() -> None:
    sw, driver = host_switch(PA_A)
    with pytest.raises(PolicyError, match="set by the vswitch"):
        sw.apply([c.AddProviderAddress(ProviderAddress("10.0.0.1", "02:00:00:00:00:01"))])
    with pytest.raises(PolicyError, match="no such port"):
        sw.apply([c.AddMapping(Mapping("r", "10.2.0.1", "10.0.9.9", "02:00:00:00:07:07", 7007)),
                  c.RemovePort("ghost")])  # fmt: skip
    assert driver.watched == ["10.0.9.9", PA_B]  # the mapping before the failure stands


def test_send_to_an_unreported_port_is_an_error() -> None:
    sw, _ = host_switch(PA_A)
    with pytest.raises(VSwitchError, match="'ghost'"):
        sw.send_to_port("ghost", b"x")


def test_programming_and_packets_from_many_threads_lose_nothing() -> None:
    sw, driver = host_switch(PA_A)
    frame = udp_frame(VM1[1], VM5[1], VM1[2], VM5[2])
    errors: list[BaseException] = []

    def send() -> None:
        try:
            for _ in range(300):
                driver.inject_from_port("vm1", frame)
        except BaseException as exc:
            errors.append(exc)

    def program() -> None:
        try:
            for i in range(100):
                m = Mapping("rdid-x", f"10.7.0.{i}", PA_B, f"02:00:00:00:70:{i:02x}", 7077)
                sw.apply([c.AddMapping(m)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(2)] + [threading.Thread(target=program)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(driver.take_sent("vm5")) == 600
    assert sw.inspect(lambda e: len(e.listing.mappings())) == len(ALL_VMS) + 100


def test_expire_retires_idle_flows() -> None:
    sw, driver = host_switch(PA_A)
    driver.inject_from_port("vm1", udp_frame(VM1[1], VM5[1], VM1[2], VM5[2]))
    assert sw.inspect(lambda e: e.listing.counters("vm1"))["flows"] == 1
    assert sw.expire(now=10_000.0) >= 1
    assert sw.inspect(lambda e: e.listing.counters("vm1"))["flows"] == 0


def test_the_expiry_thread_starts_and_stops_with_the_switch() -> None:
    driver = NullDriver()
    sw = HostSwitch(VfpEngine(), driver, expire_interval=0.001)
    sw.start()
    sw.start()  # idempotent
    (expirer,) = [t for t in threading.enumerate() if t is sw._expirer]
    assert expirer.is_alive()
    sw.stop()
    assert not expirer.is_alive()
    assert (driver.opened, driver.closed) == (1, 1)


def test_a_port_over_its_new_flow_rate_is_paused_and_the_others_are_not() -> None:
    sw, _driver = host_switch(PA_A)
    sw.engine.set_limits(PortLimits(max_flows=None, new_flow_rate=10.0, new_flow_burst=5,
                                    broadcast_rate=0, arp_rate=0))  # fmt: skip
    flood = [udp_frame(VM1[1], VM2[1], VM1[2], VM2[2], sport=s) for s in range(1000, 1020)]
    assert sw.from_port("vm1", flood) > 0
    assert sw.from_port("vm1", flood[:5]) == 0.0  # its flows: hits, nothing over the rate
    assert sw.from_port("vm5", [udp_frame(VM5[1], VM2[1], VM5[2], VM2[2])]) == 0.0
