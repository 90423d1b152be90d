"""A programmed HostSwitch (host A of the seed's picture) and a status source, for the
control-socket, query and CLI tests of the host process."""

from __future__ import annotations

from typing import Any

from vfp_frames import ALL_VMS, PA_A, PA_B, ROUTER

from openhnv.vfp import commands as c
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.layout import hnv_port_commands
from openhnv.vfp.spaces import Mapping
from openhnv.vswitch.driver import RingCounters
from openhnv.vswitch.null import NullDriver
from openhnv.vswitch.switch import HostSwitch, PaConfig

GATEWAY = "192.168.1.1"
UNPROGRAMMED = ("vm-new", "00:1d:d8:00:09:09")


class AgentState:
    """The agent's ``status()`` / ``problems()`` answers, as plain data (HostAgent's shape)."""

    def __init__(self, problems: list[dict[str, Any]] | None = None) -> None:
        self._problems = problems or []

    def status(self) -> dict[str, Any]:
        return {"connected": True, "rows": {"Ucast_Macs_Remote": len(ALL_VMS)}, "ports": 3}

    def problems(self) -> list[dict[str, Any]]:
        return list(self._problems)


class RingCountingDriver(NullDriver):
    """A null driver whose sockets counted ``counted`` (as the Linux driver's rings)."""

    def __init__(self, counted: RingCounters) -> None:
        super().__init__()
        self.counted = counted

    def ring_counters(self) -> RingCounters:
        return self.counted


def host_a(driver: NullDriver | None = None) -> tuple[HostSwitch, NullDriver]:
    """Host A (PA 192.168.1.10, VLAN 7): VM1, VM3, VM5 local, every mapping known; the
    driver (a ``NullDriver`` unless given) reports those ports plus one nobody
    programmed."""
    driver = driver or NullDriver()
    switch = HostSwitch(VfpEngine(), driver, expire_interval=None)
    switch.set_provider_addresses([PaConfig(PA_A, 24, 7, GATEWAY, "up0")])
    cmds: list[c.Command] = []
    for name, vm_mac, ip, vsid, rdid, vm_pa in ALL_VMS:
        cmds.append(c.AddMapping(Mapping(rdid, ip, vm_pa, vm_mac, vsid)))
        if vm_pa == PA_A:
            port = c.AddPort(name, vm_mac, vsid, rdid, (ip,))
            cmds += hnv_port_commands(port, router_mac=ROUTER, vnet_prefixes=["10.1.0.0/16"])
    switch.apply(cmds)
    switch.start()
    driver.inject_neighbor(PA_B, "02:00:00:00:0b:01")
    for name, vm_mac, _, _, _, vm_pa in ALL_VMS:
        if vm_pa == PA_A:
            driver.inject_port(name, vm_mac)
    driver.inject_port(*UNPROGRAMMED)
    return switch, driver


def process_status() -> dict[str, Any]:
    return {"name": "hostA", "pid": 4242}
