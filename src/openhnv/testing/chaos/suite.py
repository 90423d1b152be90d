"""The chaos suite's lab: traffic, a stream of northbound writes, faults, and what they did.

``chaos_lab(topology)`` brings a lab up (``hnv lab up``'s orchestrator), puts a
``UnixRelay`` between the controller and every host (each server's management address
is PUT to its relay), and starts the write stream, paused. ``ChaosLab.run(name,
inject)`` then measures one fault:

1. iperf3 (TCP, paced) and a probe stream run between two VMs of one virtual network on
   different hosts (the *traffic* network); the write stream writes: tags on the
   traffic NICs (PUT again whole, the same policy), the rules of an ACL on one of them
   (a deny on a port nobody uses), and NICs created and deleted on another virtual
   network (the *churn* network);
2. after ``PRE_SECONDS`` the fault is injected and undone (``faults``); the stream
   pauses when the fault is undone (``AFTER_SECONDS``), so that what follows measures
   how long the lab takes to catch up with every write made during the fault;
3. convergence: from the fault until the controller reports every NIC ``Succeeded``
   and ``Success`` and every host's OVSDB equals what the compiler makes of the
   northbound GETs (``converge``);
4. the traffic gap (the probe stream's longest silence, and iperf3's longest run of
   empty 100 ms intervals) and the writes the controller acknowledged but lost.

``FaultResult.figures()`` is the fault's JSON object (bench/chaos.py, ``make chaos``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from openhnv.lab import documents as nb
from openhnv.lab import orchestrator
from openhnv.lab.documents import Resource
from openhnv.lab.errors import LabError
from openhnv.lab.resources import OVSDB_SOCKET, uplink_nic
from openhnv.lab.rest import ControllerClient
from openhnv.lab.topology import Topology, Vm
from openhnv.testing.chaos import faults
from openhnv.testing.chaos.converge import northbound_problems, row_problems, snapshot
from openhnv.testing.chaos.relay import UnixRelay
from openhnv.testing.chaos.traffic import Iperf, ProbeStream
from openhnv.testing.chaos.writes import Write, WriteStream, get_or_none, tagged
from openhnv.testing.datapath_mode import fastpath_mode

PRE_SECONDS = 1.0  # traffic and writes before the fault
AFTER_SECONDS = 0.0  # writes after the fault is undone: none, so convergence is the catch-up
POST_SECONDS = 1.0  # traffic after convergence (so a gap that never closed shows)
CONVERGE_SECONDS = 120.0  # generous on a loaded 2-core machine; a lab that never converges fails
ACL = "chaos-acl"
UNUSED_PORT = 9000  # ACL edits deny ports from here on: no traffic of the suite uses them
PORT_SPREAD = 500
CHURN_PREFIX = "chaos"
CHURN_FIRST_HOST = 100  # churn NICs take addresses from .100 of the churn subnet
CHURN_ADDRESSES = 100
ACL_PRIORITY = 200
# tests/chaos reads its length from the environment (make chaos sets it).
SECONDS_ENV, ROUNDS_ENV, REPORT_ENV = "HNV_CHAOS_SECONDS", "HNV_CHAOS_ROUNDS", "HNV_CHAOS_JSON"
SHORT_CUT_SECONDS = 3.0


def cut_seconds() -> float:
    """How long a host's controller connection is cut (``HNV_CHAOS_SECONDS``)."""
    return float(os.environ.get(SECONDS_ENV, SHORT_CUT_SECONDS))


def rounds() -> int:
    """How often each fault runs (``HNV_CHAOS_ROUNDS``)."""
    return int(os.environ.get(ROUNDS_ENV, "1"))


# The faults, by the names their figures carry.
CUT = "controller-connection-cut"
OVSDB_KILL = "ovsdb-server-kill"
CONTROLLER_KILL = "controller-kill"
HOST_KILL = "hnv-host-kill"
NAMESPACE_RESTART = "host-namespace-restart"
LEADER_KILL = "controller-leader-kill"
_WRITE_KINDS = 4
_POLL = 0.1
_SHOWN = 10


@dataclass(slots=True)
class FaultResult:
    """What one fault did."""

    fault: str
    injected_s: float = 0.0  # from the fault until it was undone (restart, end of cut)
    convergence_s: float | None = None  # None: never converged
    settle_s: float | None = None  # from the last write's answer until converged
    gap_ms: float = 0.0  # the probe stream's longest silence
    baseline_gap_ms: float = 0.0  # the same before the fault: the machine's own noise
    iperf_gap_ms: float = 0.0
    iperf_mbit_s: float = 0.0
    iperf_error: str = ""
    resumed: bool = False  # probes arrived after convergence
    acknowledged: int = 0
    uncertain: int = 0
    rejected: int = 0
    not_sent: int = 0
    rejections: list[str] = field(default_factory=list)
    lost_writes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what was still wrong at the end

    def figures(self) -> dict[str, Any]:
        return {
            "fault": self.fault,
            "injected_s": round(self.injected_s, 2),
            "convergence_s": _rounded(self.convergence_s),
            "settle_s": _rounded(self.settle_s),
            "gap_ms": self.gap_ms,
            "baseline_gap_ms": self.baseline_gap_ms,
            "iperf_gap_ms": self.iperf_gap_ms,
            "iperf_mbit_s": self.iperf_mbit_s,
            "iperf_error": self.iperf_error,
            "traffic_resumed": self.resumed,
            "writes": {
                "acknowledged": self.acknowledged,
                "uncertain": self.uncertain,
                "rejected": self.rejected,
                "not_sent": self.not_sent,
            },
            "rejections": self.rejections[:_SHOWN],
            "lost_writes": len(self.lost_writes),
            "problems": self.problems[:_SHOWN] + self.lost_writes[:_SHOWN],
        }


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 2)


def traffic_pair(topology: Topology) -> tuple[Vm, Vm]:
    """Two VMs of one virtual network on different hosts: (sender, receiver)."""
    for network in topology.virtual_networks:
        vms = [vm for vm in topology.vms if vm.virtual_network == network.name]
        for vm in vms:
            other = next((o for o in vms if o.host != vm.host), None)
            if other is not None:
                return other, vm
    raise LabError(f"lab {topology.name}: no virtual network has VMs on two hosts")


def churn_vm(topology: Topology, traffic: str) -> Vm:
    """A VM of another virtual network than ``traffic``: its subnet gets the churn NICs."""
    for vm in topology.vms:
        if vm.virtual_network != traffic:
            return vm
    raise LabError(f"lab {topology.name}: needs a second virtual network for the churn")


class ChaosLab:
    """A running lab with relays, the traffic pair and the write stream."""

    def __init__(self, running: orchestrator.RunningLab) -> None:
        self.lab = running
        topology = running.topology
        self.sender, self.receiver = traffic_pair(topology)
        self.churn = churn_vm(topology, self.sender.virtual_network)
        subnet = topology.vm_subnet(self.churn).prefix
        hosts = list(ipaddress.IPv4Network(subnet).hosts())
        self.churn_addresses = [str(hosts[CHURN_FIRST_HOST + i]) for i in range(CHURN_ADDRESSES)]
        self.relays: dict[str, UnixRelay] = {}
        self.client = ControllerClient.connect_any(
            running.controller_urls, timeout=5.0, access=running.access
        )
        self.stream: WriteStream | None = None
        self.results: list[FaultResult] = []

    # ------------------------------------------------------------------ setup
    def _nic_body(self, vm: Vm, version: int) -> Write:
        mac = str(self.lab.nics[vm.name]["properties"]["privateMacAddress"])
        acl = ACL if vm.name == self.receiver.name else None
        config = nb.ip_configuration(str(vm.ip), vm.virtual_network, vm.subnet, acl=acl)
        resource = nb.network_interface(vm.name, [config], server_name=vm.host, mac=mac)
        return Write(resource.path, tagged(resource.body, version))

    def _acl(self, version: int) -> Write:
        port = UNUSED_PORT + version % PORT_SPREAD
        rule = nb.acl_rule(
            "deny-unused",
            "Inbound",
            "Deny",
            ACL_PRIORITY,
            protocol="TCP",
            destination_ports=str(port),
        )
        resource = nb.access_control_list(ACL, [rule])
        return Write(resource.path, tagged(resource.body, version))

    def _churn_nic(self, index: int, version: int) -> Write:
        hosts = self.lab.topology.hosts
        vm = self.churn
        config = nb.ip_configuration(
            self.churn_addresses[index % CHURN_ADDRESSES], vm.virtual_network, vm.subnet
        )
        resource = nb.network_interface(
            f"{CHURN_PREFIX}-{index}", [config], server_name=hosts[index % len(hosts)].name
        )
        return Write(resource.path, tagged(resource.body, version))

    def plan(self, n: int) -> Write:
        """The n-th write of the stream."""
        kind, cycle = n % _WRITE_KINDS, n // _WRITE_KINDS
        if kind == 0:
            return self._nic_body(self.sender if cycle % 2 else self.receiver, n)
        if kind == 1:
            return self._acl(n)
        if kind == 2:
            return self._churn_nic(cycle, n)
        if cycle == 0:
            return self._nic_body(self.churn, n)
        return Write(f"/networkInterfaces/{CHURN_PREFIX}-{cycle - 1}")

    def start(self) -> None:
        """Relays in front of every host, the ACL on the receiver, the stream (paused)."""
        for host in self.lab.topology.hosts:
            state_dir = self.lab.host_state_dir(host.name)
            relay = UnixRelay(
                self.lab.run_dir / f"relay-{host.name}.sock", state_dir / OVSDB_SOCKET
            )
            self.relays[host.name] = relay
            nics = [(uplink_nic(i), host.pa_subnet) for i in range(host.uplinks)]
            self.client.put(nb.server(host.name, [relay.remote], nics))
        for write in (self._acl(-1), self._nic_body(self.receiver, -1)):
            collection, _, resource_id = write.path.strip("/").partition("/")
            self.client.put(Resource(collection, resource_id, write.body or {}))
        self.stream = WriteStream(self.lab.controller_urls, self.plan, access=self.lab.access)
        converged, problems = self.wait_converged(time.monotonic())
        if converged is None:
            raise LabError(
                f"chaos lab: not converged after its relays and ACL: {problems[:_SHOWN]}"
            )

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
        for relay in self.relays.values():
            relay.close()
        self.client.close()

    # ------------------------------------------------------------------ measuring
    def remotes(self) -> dict[str, str]:
        """Each host's OVSDB, read directly (not through its relay)."""
        return {
            h.name: f"unix:{self.lab.host_state_dir(h.name) / OVSDB_SOCKET}"
            for h in self.lab.topology.hosts
        }

    def problems(self) -> list[str]:
        state = snapshot(self.client)
        return northbound_problems(state) or row_problems(state, self.remotes())

    def wait_converged(self, since: float) -> tuple[float | None, list[str]]:
        """Seconds from ``since`` until the lab is converged (None: not within the bound)."""
        deadline = since + CONVERGE_SECONDS
        problems: list[str] = ["not checked"]
        while time.monotonic() < deadline:
            moment = time.monotonic()
            try:
                problems = self.problems()
            except (LabError, httpx.HTTPError) as exc:
                problems = [f"controller: {exc}"]
            if not problems:
                return moment - since, []
            time.sleep(_POLL)
        return None, problems

    def _get(self, path: str) -> Any:
        return get_or_none(self.client.http, path)

    def run(self, fault: str, inject: Callable[[], None]) -> FaultResult:
        """Inject one fault under traffic and writes; measure it (see the module)."""
        stream = self.stream
        if stream is None:
            raise LabError("chaos lab: start() first")
        result = FaultResult(fault)
        counts = stream.counts
        before = (counts.acknowledged, counts.uncertain, counts.rejected, counts.not_sent)
        rejections_before = len(counts.rejections)
        sender, receiver = (
            self.lab.vm_namespace(self.sender.name),
            self.lab.vm_namespace(self.receiver.name),
        )
        address = str(self.receiver.ip)
        with (
            ProbeStream(sender, receiver, address) as probe,
            Iperf(receiver, sender, address) as iperf,
        ):
            stream.resume()
            began = time.monotonic()
            time.sleep(PRE_SECONDS)
            fault_at = time.monotonic()
            try:
                inject()
                result.injected_s = time.monotonic() - fault_at
                time.sleep(AFTER_SECONDS)
            finally:
                stream.pause()
            paused_at = time.monotonic()
            result.convergence_s, result.problems = self.wait_converged(fault_at)
            converged_at = time.monotonic()
            if result.convergence_s is not None:
                result.settle_s = max(0.0, fault_at + result.convergence_s - paused_at)
            time.sleep(POST_SECONDS)
            iperf.stop()
            ended = time.monotonic()
            result.gap_ms = probe.gap_ms(fault_at, ended)
            result.baseline_gap_ms = probe.gap_ms(began + _POLL, fault_at)
            result.resumed = probe.received_after(converged_at) > 0
        result.iperf_gap_ms, result.iperf_mbit_s = iperf.gap_ms(), iperf.mbit_per_s()
        result.iperf_error = iperf.error
        result.acknowledged = counts.acknowledged - before[0]
        result.uncertain = counts.uncertain - before[1]
        result.rejected = counts.rejected - before[2]
        result.not_sent = counts.not_sent - before[3]
        result.rejections = counts.rejections[rejections_before:]
        result.lost_writes = [
            f"lost write {loss.path}: found {loss.found!r}, acknowledged/uncertain {loss.allowed!r}"
            for loss in stream.lost(self._get)
        ]
        self.results.append(result)
        return result


def fault_injections(chaos: ChaosLab, cut_seconds: float) -> dict[str, Callable[[], None]]:
    """Every fault of the suite by name, aimed at the traffic pair's hosts."""
    lab, sender_host, receiver_host = chaos.lab, chaos.sender.host, chaos.receiver.host
    relay = chaos.relays[receiver_host]
    injections: dict[str, Callable[[], None]] = {
        CUT: lambda: faults.cut_controller(relay, cut_seconds),
        OVSDB_KILL: lambda: faults.kill_ovsdb(lab, receiver_host),
        CONTROLLER_KILL: lambda: faults.kill_controller(lab),
        HOST_KILL: lambda: faults.kill_host(lab, sender_host),
        NAMESPACE_RESTART: lambda: faults.restart_host_namespace(lab, receiver_host),
    }
    if len(lab.controller_urls) > 1:  # a cluster: the replica that publishes
        injections[LEADER_KILL] = lambda: faults.kill_controller(lab, faults.leader(lab))
    return injections


@contextlib.contextmanager
def chaos_lab(
    topology: Topology, controllers: int = 1, progress: Callable[[str], None] = print
) -> Iterator[ChaosLab]:
    """A lab up with relays and the write stream; everything removed afterwards. Its
    hosts run the data path of ``HNV_TEST_FASTPATH`` (``testing.datapath_mode``)."""
    try:
        running = orchestrator.up(
            topology, progress=progress, controllers=controllers, fastpath=fastpath_mode()
        )
        chaos = ChaosLab(running)
        try:
            chaos.start()
            yield chaos
        finally:
            chaos.close()
    finally:
        orchestrator.down(topology.name)
