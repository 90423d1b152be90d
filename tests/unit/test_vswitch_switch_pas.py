"""The switch's PA side (``vswitch.switch_pas``): PAs replaced as a set, next hops
resolved into neighbours and gateway MACs, the remote PAs the driver watches, the
uplinks' MTUs; through a HostSwitch on the null driver."""

from __future__ import annotations

import contextlib
import logging
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from switch_fixtures import host_switch
from vfp_frames import MAC_A, MAC_B, PA_A, PA_B, VM1, VM2, mac, udp_frame

from openhnv.packet.ethernet import VLAN_TAG_LEN
from openhnv.packet.frames import VXLAN_OUTER_LEN
from openhnv.vfp import commands as c
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.spaces import Mapping
from openhnv.vswitch.errors import VSwitchError
from openhnv.vswitch.null import made_up_mac
from openhnv.vswitch.switch import PaConfig
from openhnv.vswitch.switch_pas import VM_MTU, ProviderAddresses
from openhnv.vswitch.team import Placement


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


def _one_pa(vlan: int | None = None) -> ProviderAddresses:
    pas = ProviderAddresses([])
    cmds = pas.replace({PA_A: PaConfig(PA_A, 24, vlan, None, "up0")}, {PA_A: MAC_A}, {})
    assert [type(cmd) for cmd in cmds] == [c.AddProviderAddress]
    return pas


def test_an_uplink_too_small_for_encapsulated_frames_lowers_the_overlay_mtu_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pas = _one_pa(vlan=12)
    assert pas.overlay_mtu() == VM_MTU  # no MTU known: the default
    pas.mtus = {PA_A: 1500}
    assert pas.overlay_mtu() == 1500 - VXLAN_OUTER_LEN - VLAN_TAG_LEN  # the tag too
    with caplog.at_level(logging.WARNING, logger="openhnv.vswitch.switch_pas"):
        pas.check_uplink_mtu("up0", 1500)
        pas.check_uplink_mtu("up0", 1500)  # once per uplink
        pas.check_uplink_mtu("up1", VM_MTU + VXLAN_OUTER_LEN)  # enough: nothing
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"uplink up0 has MTU 1500, below {VM_MTU + VXLAN_OUTER_LEN}")
    pas.mtus = {PA_A: 9000}
    assert pas.overlay_mtu() == VM_MTU


def test_a_pa_moved_to_another_member_leaves_from_it_and_shows_as_moved() -> None:
    pas = _one_pa()
    carrier = {"up0": False, "up1": True}
    assert pas.move({PA_A: Placement(PA_A, "up0", "up1")}, carrier) == (True, {PA_A})
    assert pas.placed[PA_A].interface == "up1"
    assert pas.team_status() == {
        "members": {"up0": "down", "up1": "up"},
        "provider_addresses": {PA_A: {"member": "up1", "home": "up0", "moved": True}},
    }
    assert pas.move({PA_A: Placement(PA_A, "up0", "up1")}, carrier) == (False, set())
    assert pas.move({}, {"up0": True, "up1": True}) == (True, {PA_A})  # home again
    assert pas.placed[PA_A].interface == "up0"
