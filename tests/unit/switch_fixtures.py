"""A HostSwitch on the null driver with the seed's VMs, and a listener that records, for
the unit tests of the switch and its parts (``vswitch.switch``, ``switch_pas``,
``switch_limits``)."""

from __future__ import annotations

from vfp_frames import ALL_VMS, ROUTER

from openhnv.vfp import commands as c
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.layout import hnv_port_commands
from openhnv.vfp.spaces import Mapping
from openhnv.vswitch.null import NullDriver
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
