"""NullDriver: the caller plays the wire; what the switch sends is recorded."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from openhnv.vfp.emits import Transmit
from openhnv.vswitch.driver import PaConfig
from openhnv.vswitch.errors import VSwitchError
from openhnv.vswitch.null import NullDriver, made_up_mac
from openhnv.vswitch.team import Placement


class Sink:
    """A FrameSink that records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def from_port(self, port: str, frames: list[bytes]) -> float:
        self.calls.append(("from_port", port, frames))
        return 0.0

    def from_uplink(self, frames: list[bytes]) -> None:
        self.calls.append(("from_uplink", frames))

    def round_done(self) -> None:
        self.calls.append(("round_done",))

    def port_added(self, port: str, mac: str) -> None:
        self.calls.append(("port_added", port, mac))

    def port_removed(self, port: str) -> None:
        self.calls.append(("port_removed", port))

    def pa_neighbor(self, address: str, mac: str | None) -> None:
        self.calls.append(("pa_neighbor", address, mac))

    def team_changed(self, placement: Mapping[str, Placement], carrier: Mapping[str, bool]) -> None:
        self.calls.append(("team_changed",))


def test_injections_reach_the_sink_once_open() -> None:
    driver, sink = NullDriver(), Sink()
    driver.inject_port("p0", "02:00:00:00:00:01")  # before open: reported on open
    driver.open(sink)
    driver.inject_port("p1", "02:00:00:00:00:02")
    driver.inject_from_port("p1", b"frame")
    driver.inject_from_uplink(b"outer")
    driver.inject_neighbor("192.168.1.20", "02:00:00:00:00:20")
    driver.remove_port("p0")
    driver.remove_port("never-there")
    assert sink.calls == [
        ("port_added", "p0", "02:00:00:00:00:01"),
        ("port_added", "p1", "02:00:00:00:00:02"),
        ("from_port", "p1", [b"frame"]),
        ("round_done",),
        ("from_uplink", [b"outer"]),
        ("round_done",),
        ("pa_neighbor", "192.168.1.20", "02:00:00:00:00:20"),
        ("port_removed", "p0"),
    ]


def test_injecting_frames_before_open_or_after_close_is_an_error() -> None:
    driver = NullDriver()
    with pytest.raises(VSwitchError, match="not open"):
        driver.inject_from_port("p", b"x")
    driver.open(Sink())
    driver.close()
    with pytest.raises(VSwitchError, match="inject_from_uplink: the driver is not open"):
        driver.inject_from_uplink(b"x")


def test_sent_frames_are_recorded_and_taken_in_order() -> None:
    driver = NullDriver()
    driver.send_to_port("p", [b"1", b"2"])
    driver.send_to_port("p", [b"3"])
    tx = Transmit(b"outer", "192.168.1.10", "192.168.1.20")
    driver.transmit([tx])
    assert driver.take_sent("p") == [b"1", b"2", b"3"]
    assert driver.take_sent("p") == []
    assert driver.take_transmitted() == [tx]
    assert driver.take_transmitted() == []


def test_configuration_is_recorded() -> None:
    driver = NullDriver()
    pa = PaConfig("192.168.1.10", 24, None, None, "up0")
    driver.set_provider_addresses([pa])
    driver.watch_neighbors(["192.168.1.20"])
    assert driver.provider_addresses == [pa]
    assert driver.watched == ["192.168.1.20"]


def test_made_up_uplink_macs_are_stable_local_unicast_and_distinct() -> None:
    driver = NullDriver()
    macs = {driver.uplink_mac(f"up{i}") for i in range(50)}
    assert len(macs) == 50
    assert driver.uplink_mac("up0") == made_up_mac("up0")
    for m in macs:
        first = int(m[:2], 16)
        assert first & 0x02
        assert not first & 0x01
    with pytest.raises(VSwitchError, match="empty"):
        driver.uplink_mac("")
