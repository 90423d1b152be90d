"""A datacenter on the emulated PA network, programmed from the compiler's rows.

``EmulatedDatacenter(snapshot)`` compiles a northbound snapshot with the real compiler,
then for each server plans its rows as the host agent does (``read_catalog``, ``plan``,
``changes``, ``apply_units``) into a ``HostSwitch`` on an ``EmulatedNetwork``: no
OVSDB, no threads, no namespaces. VMs send with ``send`` and what each received is
``received``. The agent's ARP answers are not modelled: senders address frames to the
MAC they would have learnt (the peer's, or the distributed router's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openhnv.agent.apply import apply_units
from openhnv.agent.planner import EMPTY_PLAN, Plan, changes, plan
from openhnv.agent.rows import read_catalog
from openhnv.controller.compiler.compile import compile_datacenter
from openhnv.vfp.engine import VfpEngine
from openhnv.vswitch.emulated import EmulatedDriver, EmulatedNetwork
from openhnv.vswitch.switch import HostSwitch

PORT_TABLE = "Physical_Port"


def program(switch: HostSwitch, new: Plan) -> None:
    """What the host agent does with a plan of its rows on a fresh switch (refused units
    are left out, as the agent leaves them)."""
    switch.set_provider_addresses(new.provider_addresses)
    apply_units(switch, changes(EMPTY_PLAN, new))


class EmulatedDatacenter:
    """Every server of a snapshot as a programmed HostSwitch on one emulated PA network."""

    def __init__(self, snapshot: Mapping[str, list[Any]]) -> None:
        compiled = compile_datacenter(snapshot)
        self.problems = list(compiled.problems)
        self.network = EmulatedNetwork()
        self.switches: dict[str, HostSwitch] = {}
        self.plans: dict[str, Plan] = {}
        self.ports: dict[str, tuple[str, str]] = {}  # NIC resourceId -> (host, port)
        for host, rows in sorted(compiled.hosts.items()):
            self.plans[host] = plan(read_catalog(rows))
            self._uplinks(host, self.plans[host])
        for host, rows in sorted(compiled.hosts.items()):
            switch = HostSwitch(
                VfpEngine(), EmulatedDriver(self.network, host), expire_interval=None
            )
            switch.start()
            self.switches[host] = switch
            program(switch, self.plans[host])
            for port, row in rows.get(PORT_TABLE, {}).items():
                other = row.get("other_config", {})
                mac = other.get("mac_address") if isinstance(other, Mapping) else None
                if isinstance(mac, str) and mac:
                    self.network.add_vm_port(host, port, mac)
                    self.ports[str(row["description"])] = (host, port)

    def _uplinks(self, host: str, new: Plan) -> None:
        """The PA subnets of ``host``'s PAs (with their gateways) and its uplinks."""
        uplinks: dict[str, str] = {}
        for pa in new.provider_addresses:
            name = str(pa.network)
            if name not in self.network.subnets:
                self.network.add_subnet(name, name, vlan_id=pa.vlan_id, gateway=pa.gateway)
            uplinks[pa.interface] = name
        self.network.add_host(host, uplinks)

    def send(self, nic: str, frame: bytes) -> None:
        host, port = self.ports[nic]
        self.network.send_from_vm(host, port, frame)

    def received(self, nic: str) -> list[bytes]:
        host, port = self.ports[nic]
        return self.network.received(host, port)

    def close(self) -> None:
        for switch in self.switches.values():
            switch.stop()
