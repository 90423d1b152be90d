"""HostSwitch: the engine's emits carried out through a driver, the PA side, the listener."""

from __future__ import annotations

import contextlib
import struct
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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
from openhnv.vfp.layout import hnv_port_commands
from openhnv.vfp.limits import PortLimits
from openhnv.vfp.spaces import Mapping, ProviderAddress
from openhnv.vswitch.errors import VSwitchError
from openhnv.vswitch.null import NullDriver, made_up_mac
from openhnv.vswitch.switch import HostSwitch, PaConfig


class Agent:
    """A listener that records, and answers ARP like the host agent would (with a fixed MAC)."""

    def __init__(self, switch: HostSwitch | None = None) -> None:
        self.switch = switch
        self.added: list[tuple[str, str]] = []
        self.removed: list[str] = []
        self.punts: list[tuple[str, bytes, str]] = []

    def port_added(self, port: str, mac: str) -> None:
        self.added.append((port, mac))

    def port_removed(self, port: str) -> None:
        self.removed.append(port)

    def punted(self, port: str, frame: bytes, reason: str) -> None:
        self.punts.append((port, frame, reason))
        if self.switch is not None:
            self.switch.send_to_port(port, b"reply:" + frame[:6])

    def team_changed(self) -> None:
        pass


def vm_commands(pa: str) -> list[c.Command]:
    cmds: list[c.Command] = []
    for name, vm_mac, ip, vsid, rdid, vm_pa in ALL_VMS:
        cmds.append(c.AddMapping(Mapping(rdid, ip, vm_pa, vm_mac, vsid)))
        if vm_pa == pa:
            port = c.AddPort(name, vm_mac, vsid, rdid, (ip,))
            cmds += hnv_port_commands(port, router_mac=ROUTER, vnet_prefixes=["10.1.0.0/16"])
    return cmds


def host_switch(
    pa: str, *, vlan: int | None = None, gateway: str | None = None, prefix: int = 24
) -> tuple[HostSwitch, NullDriver]:
    """A started host switch for ``pa`` with every VM's mapping and its local VMs' ports."""
    driver = NullDriver()
    sw = HostSwitch(VfpEngine(clock=lambda: 0.0), driver, expire_interval=None)
    sw.start()
    sw.set_provider_addresses([PaConfig(pa, prefix, vlan, gateway, "up0")])
    sw.apply(vm_commands(pa))
    for name, vm_mac, _ip, _vsid, _rdid, vm_pa in ALL_VMS:
        if vm_pa == pa:
            driver.inject_port(name, vm_mac)
    return sw, driver


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


def test_remote_pa_is_watched_and_traffic_waits_for_its_neighbour() -> None:
    sw, driver = host_switch(PA_A)
    assert driver.watched == [PA_B]
    frame = udp_frame(VM1[1], VM2[1], VM1[2], VM2[2])
    driver.inject_from_port("vm1", frame)
    assert driver.take_transmitted() == []
    assert sw.inspect(lambda e: e.listing.counters("vm1"))["drop:no_pa_route"] == 1
    driver.inject_neighbor(PA_B, MAC_B)
    driver.inject_from_port("vm1", frame)
    (tx,) = driver.take_transmitted()
    assert (tx.source_pa, tx.provider_address) == (PA_A, PA_B)
    assert tx.frame[0:6] == mac(MAC_B)  # the resolved neighbour
    assert tx.frame[6:12] == mac(made_up_mac("up0"))  # the uplink's MAC
    assert tx.frame[50:] == frame
    assert sw.neighbors() == {PA_B: MAC_B}
    driver.inject_neighbor(PA_B, None)  # lost again: no route
    driver.inject_from_port("vm1", frame)
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


def test_the_pa_vlan_tags_transmitted_frames() -> None:
    _sw, driver = host_switch(PA_A, vlan=12)
    driver.inject_neighbor(PA_B, MAC_B)
    driver.inject_from_port("vm1", udp_frame(VM1[1], VM2[1], VM1[2], VM2[2]))
    (tx,) = driver.take_transmitted()
    assert tx.frame[12:16] == struct.pack("!HH", 0x8100, 12)
    assert driver.provider_addresses == [PaConfig(PA_A, 24, 12, None, "up0")]


def test_an_off_link_pa_is_reached_through_the_resolved_gateway() -> None:
    sw, driver = host_switch(PA_A, gateway="192.168.1.1", prefix=28)  # PA_B is off-link
    frame = udp_frame(VM1[1], VM2[1], VM1[2], VM2[2])
    driver.inject_from_port("vm1", frame)
    assert driver.take_transmitted() == []
    driver.inject_neighbor(PA_B, MAC_B)  # an off-link PA is never a neighbour
    driver.inject_from_port("vm1", frame)
    assert driver.take_transmitted() == []
    driver.inject_neighbor("192.168.1.1", "02:00:00:00:00:01")
    driver.inject_from_port("vm1", frame)
    (tx,) = driver.take_transmitted()
    assert tx.frame[0:6] == mac("02:00:00:00:00:01")
    pas = sw.inspect(lambda e: e.listing.provider_addresses())
    assert pas[0]["gateway_mac"] == "02:00:00:00:00:01"


def test_provider_addresses_are_replaced_as_a_set() -> None:
    sw, driver = host_switch(PA_A)
    sw.set_provider_addresses(
        [PaConfig("192.168.1.11", 24, None, None, "up0"), PaConfig(PA_A, 24, None, None, "up1")]
    )
    listed = sw.inspect(
        lambda e: [(p["address"], p["mac"]) for p in e.listing.provider_addresses()]
    )
    assert listed == [("192.168.1.10", made_up_mac("up1")), ("192.168.1.11", made_up_mac("up0"))]
    sw.set_provider_addresses([PaConfig("192.168.1.11", 24, None, None, "up0")])
    assert [p.address for p in sw.provider_addresses()] == ["192.168.1.11"]
    assert sw.inspect(lambda e: len(e.listing.provider_addresses())) == 1
    assert driver.watched == [PA_A, PA_B]  # the old PA's VMs are now remote
    with pytest.raises(VSwitchError, match="given twice"):
        sw.set_provider_addresses([PaConfig(PA_A, 24, None, None, "up0")] * 2)


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


MAPPING_PAS = (PA_A, PA_B, "10.0.9.8", "10.0.9.9")
mapping_command = st.one_of(
    st.builds(
        lambda ca, pa, vsid: c.AddMapping(
            Mapping(f"rdid-{vsid}", f"10.3.0.{ca}", pa, f"02:00:00:03:00:{ca:02x}", vsid)
        ),
        st.integers(1, 6),
        st.sampled_from(MAPPING_PAS),
        st.sampled_from((8001, 8002)),
    ),
    st.builds(
        lambda ca, vsid, missing_ok: c.RemoveMapping(f"rdid-{vsid}", f"10.3.0.{ca}", missing_ok),
        st.integers(1, 6),
        st.sampled_from((8001, 8002)),
        st.booleans(),  # a missing one not ok: the batch stops there
    ),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(mapping_command, max_size=5), max_size=8))
def test_the_watched_pas_are_those_of_the_remote_mappings_after_every_batch(
    batches: list[list[c.Command]],
) -> None:
    sw, driver = host_switch(PA_A)
    for batch in batches:
        with contextlib.suppress(PolicyError):
            sw.apply(batch)
        remote = {m.provider_address for m in sw.inspect(lambda e: e.state.mappings.all())}
        assert driver.watched == sorted(remote - {PA_A})


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


def test_a_neighbour_heard_before_its_pa_was_on_link_is_used_once_it_is() -> None:
    sw, driver = host_switch(PA_A, prefix=28)  # PA_B (.20) is off-link from .10/28
    driver.inject_neighbor(PA_B, MAC_B)
    assert sw.inspect(lambda e: dict(e.state.pa_neighbors)) == {}
    sw.set_provider_addresses([PaConfig(PA_A, 24, None, None, "up0")])  # now on-link
    assert sw.inspect(lambda e: dict(e.state.pa_neighbors)) == {PA_B: MAC_B}
    driver.inject_from_port("vm1", udp_frame(VM1[1], VM2[1], VM1[2], VM2[2]))
    (tx,) = driver.take_transmitted()
    assert tx.frame[0:6] == mac(MAC_B)
    sw.set_provider_addresses([PaConfig(PA_A, 28, None, None, "up0")])  # off-link again
    assert sw.inspect(lambda e: dict(e.state.pa_neighbors)) == {}


def test_abuse_limit_drops_show_in_the_status_and_one_log_line_per_port_and_pass(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sw, driver = host_switch(PA_A)
    sw.engine.set_limits(PortLimits(max_flows=2, new_flow_rate=0, broadcast_rate=0, arp_rate=0))
    for sport in range(1000, 1010):
        driver.inject_from_port("vm1", udp_frame(VM1[1], VM5[1], VM1[2], VM5[2], sport=sport))
    status = sw.limit_status()
    assert status["drops"] == {"flow_limit": 8}
    assert status["ports"] == {"vm1": {"flow_limit": 8}}
    assert status["limits"]["max_flows"] == 2  # type: ignore[index]
    with caplog.at_level("WARNING", logger="openhnv.vswitch.switch"):
        sw.expire()
        sw.expire()  # nothing new: no second line
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "port vm1: over its abuse limits since the last report, dropped 8 (flow_limit)"
    ]


def test_a_port_over_its_new_flow_rate_is_paused_and_the_others_are_not() -> None:
    sw, _driver = host_switch(PA_A)
    sw.engine.set_limits(PortLimits(max_flows=None, new_flow_rate=10.0, new_flow_burst=5,
                                    broadcast_rate=0, arp_rate=0))  # fmt: skip
    flood = [udp_frame(VM1[1], VM2[1], VM1[2], VM2[2], sport=s) for s in range(1000, 1020)]
    assert sw.from_port("vm1", flood) > 0
    assert sw.from_port("vm1", flood[:5]) == 0.0  # its flows: hits, nothing over the rate
    assert sw.from_port("vm5", [udp_frame(VM5[1], VM2[1], VM5[2], VM2[2])]) == 0.0


class MeteringNullDriver(NullDriver):
    """A null driver that meters like the Linux driver's socket filters would: it keeps
    the limits it was given and reports the drops a test says it made."""

    def __init__(self) -> None:
        super().__init__()
        self.limits: list[PortLimits] = []
        self.dropped: dict[str, dict[str, int]] = {}

    def set_port_limits(self, limits: PortLimits) -> None:
        self.limits.append(limits)

    def kernel_limit_drops(self) -> dict[str, dict[str, int]]:
        return {port: dict(drops) for port, drops in self.dropped.items()}

    def metering_status(self) -> dict[str, object]:
        return {"state": "on", "filter": "test"}


def test_a_metering_driver_gets_the_limits_and_its_drops_are_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limits = PortLimits(max_flows=None, new_flow_rate=10.0, new_flow_burst=5)
    driver = MeteringNullDriver()
    sw = HostSwitch(VfpEngine(clock=lambda: 0.0, limits=limits), driver, expire_interval=None)
    assert driver.limits == [limits]  # before any port: the filters meter from the start
    sw.start()
    sw.set_provider_addresses([PaConfig(PA_A, 24, None, None, "up0")])
    sw.apply(vm_commands(PA_A))
    driver.inject_port("vm1", VM1[1])
    driver.dropped = {"vm1": {"new_flow_rate": 900, "arp_rate": 3}}
    status = sw.limit_status()
    assert status["drops"] == {}  # the engine itself dropped nothing
    assert status["kernel"] == {
        "state": "on", "filter": "test",
        "drops": {"new_flow_rate": 900, "arp_rate": 3},
        "ports": {"vm1": {"new_flow_rate": 900, "arp_rate": 3}},
    }  # fmt: skip
    with caplog.at_level("WARNING", logger="openhnv.vswitch.switch"):
        sw.expire()
    assert [r.getMessage() for r in caplog.records] == [
        "port vm1: over its abuse limits since the last report, dropped"
        " 3 (arp_rate in the kernel), 900 (new_flow_rate in the kernel)"
    ]
    changed = PortLimits(new_flow_rate=0, broadcast_rate=0, arp_rate=0)
    sw.set_limits(changed)
    assert driver.limits == [limits, changed]
    assert sw.engine.state.limits == changed
