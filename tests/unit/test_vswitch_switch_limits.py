"""The switch's abuse limits (``vswitch.switch_limits``): the limits reach the engine
and a metering driver, their drops show in the status, one log line per port and
expiry pass; through a HostSwitch on the null driver."""

from __future__ import annotations

import pytest
from switch_fixtures import host_switch, vm_commands
from vfp_frames import PA_A, VM1, VM5, udp_frame

from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.limits import PortLimits
from openhnv.vswitch.null import NullDriver
from openhnv.vswitch.switch import HostSwitch, PaConfig


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
    with caplog.at_level("WARNING", logger="openhnv.vswitch.switch_limits"):
        sw.expire()
        sw.expire()  # nothing new: no second line
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "port vm1: over its abuse limits since the last report, dropped 8 (flow_limit)"
    ]


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
    with caplog.at_level("WARNING", logger="openhnv.vswitch.switch_limits"):
        sw.expire()
    assert [r.getMessage() for r in caplog.records] == [
        "port vm1: over its abuse limits since the last report, dropped"
        " 3 (arp_rate in the kernel), 900 (new_flow_rate in the kernel)"
    ]
    changed = PortLimits(new_flow_rate=0, broadcast_rate=0, arp_rate=0)
    sw.set_limits(changed)
    assert driver.limits == [limits, changed]
    assert sw.engine.state.limits == changed
