"""``hnv lab migrate VM --to HOST``: a VM's live migration, as Hyper-V and the NC do it.

The order (each step reported; times from the REST call in the ``MigrationReport``):

1. the source host's connection table of the VM's port leaves it (the control op
   ``export-connections``, ``vfp.migration``): what lets replies of the VM's connections
   through its stateful ACL;
2. the NIC's ``server`` changes through the REST API, as NC clients do it: GET the
   ``networkInterfaces`` document, PUT it back with the new ``server`` and ``If-Match``
   its etag. The controller compiles and publishes: the destination gets the port (its
   ``Physical_Port`` with the NIC's policy: ACLs, guards, the VNet's mappings), every
   host the NIC's CA at the destination's PA, and the source loses the port;
3. once the destination's agent programmed the port (``list-ports``), the connections
   are decided there (``import-connections``), before the VM's first packet arrives;
4. the blackout: the host end of the VM's veth moves from the source host's namespace
   into the destination's (``netns.move_link``). The VM's namespace keeps its interface,
   MAC, address, routes, sockets and ARP cache (``keep_neighbors``); the destination's
   switch takes the veth as the NIC's port by its ifalias and brings it up, as on
   ``hnv lab up``;
5. the source has released the port (``list-ports``) and the controller reports the NIC
   ``Succeeded`` (every host that needs its rows has them).

Where each VM runs is kept in ``<run_dir>/placement.json`` (``placed`` applies it to the
topology the lab was made from), so ``hnv lab status`` and the next migration know it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openhnv.host import control
from openhnv.host.errors import ControlError
from openhnv.lab import builder, netns
from openhnv.lab.documents import Document, Resource, reference
from openhnv.lab.errors import LabError
from openhnv.lab.orchestrator import RunningLab
from openhnv.lab.resources import host_state_dir
from openhnv.lab.rest import ControllerClient, instance_id, wait_succeeded
from openhnv.lab.topology import Topology

PLACEMENT_FILE = "placement.json"
MIGRATION_SECONDS = 30.0  # for each wait: the destination programmed, the source released
_POLL = 0.005
_READ_ONLY = ("provisioningState", "configurationState")

Progress = Callable[[str], None]
Clock = Callable[[], float]


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What one migration did and when (milliseconds after the REST call)."""

    vm: str
    source: str
    destination: str
    connections: int  # the source's connections of the port
    adopted: int  # those the destination's policy took
    programmed_ms: float  # the destination's agent programmed the port
    switched_ms: float  # the VM's veth moved into the destination host
    attached_ms: float  # the destination's switch took it as the NIC's port
    released_ms: float  # the source has no port for the NIC any more
    succeeded_ms: float  # the controller reports the NIC Succeeded
    put_at: float  # the clock's time of the REST call

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------- placement


def placement(run_dir: Path) -> dict[str, str]:
    """VM -> host for the VMs migrated since ``hnv lab up``."""
    try:
        found = json.loads((run_dir / PLACEMENT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(vm): str(host) for vm, host in found.items()}


def placed(topology: Topology, where: Mapping[str, str]) -> Topology:
    """``topology`` with each VM of ``where`` on the host it names (unknown names are
    ignored: the placement of another lab's file)."""
    vms = tuple(
        dataclasses.replace(vm, host=where[vm.name])
        if vm.name in where and where[vm.name] in topology.host_names()
        else vm
        for vm in topology.vms
    )
    return dataclasses.replace(topology, vms=vms)


def record_placement(run_dir: Path, vm: str, host: str) -> None:
    where = placement(run_dir)
    where[vm] = host
    (run_dir / PLACEMENT_FILE).write_text(json.dumps(where, sort_keys=True) + "\n")


def moved(topology: Topology, vm: str, host: str) -> Topology:
    """``topology`` with ``vm`` on ``host``; ``LabError`` when that is no migration."""
    try:
        found = topology.vm(vm)
    except KeyError:
        raise LabError(f"no VM named {vm!r} in lab {topology.name}") from None
    if host not in topology.host_names():
        raise LabError(f"no host named {host!r} in lab {topology.name}")
    if found.host == host:
        raise LabError(f"VM {vm} already runs on {host}")
    if found.logical_network is not None:
        raise LabError(
            f"migrate: VM {vm} is on logical network {found.logical_network} (an access port"
            " stays where its VLAN is trunked)"
        )
    return placed(topology, {vm: host})


def keep_neighbors(namespace: str) -> None:
    """The VM of ``namespace`` keeps its ARP cache when its link drops: a Hyper-V VM's
    NIC keeps its link through a live migration, the lab's veth loses carrier while its
    host end moves, and Linux would flush the VM's neighbours (then the first packets
    after the move wait a whole ARP retransmission, 1 s). As a roaming wireless NIC
    does: ``arp_evict_nocarrier`` off."""
    key = f"net/ipv4/conf/{builder.VM_INTERFACE}/arp_evict_nocarrier"
    netns.set_sysctl(namespace, key, "0")


def moved_document(document: Document, server: str) -> Resource:
    """The PUT of a NIC GET ``document`` placed on ``server``: what a client sends back."""
    properties = {
        k: v for k, v in dict(document.get("properties", {})).items() if k not in _READ_ONLY
    }
    properties["server"] = reference("servers", server)
    body: Document = {"resourceId": document["resourceId"], "properties": properties}
    if document.get("tags"):
        body["tags"] = document["tags"]
    return Resource("networkInterfaces", str(document["resourceId"]), body)


# ---------------------------------------------------------------- migration


def migrate(
    lab: builder.Lab,
    client: ControllerClient,
    vm: str,
    destination: str,
    progress: Progress = _quiet,
    *,
    timeout: float = MIGRATION_SECONDS,
    clock: Clock = time.monotonic,
) -> MigrationReport:
    """Move ``vm`` to host ``destination`` (module docstring); ``lab.topology`` and the
    run directory's placement follow it."""
    target = moved(lab.topology, vm, destination)
    source = lab.topology.vm(vm).host
    nic = client.get(f"/networkInterfaces/{vm}")
    port = instance_id(nic)
    source_dir = host_state_dir(lab.run_dir, source)
    destination_dir = host_state_dir(lab.run_dir, destination)
    try:
        states = control.call(source_dir, "export-connections", port=port)
    except ControlError as exc:  # a source that is gone has no state to give
        progress(f"VM {vm}: no connections from {source} ({exc})")
        states = []
    progress(f"VM {vm}: {len(states)} connections leave host {source}")
    etag = nic.get("etag")
    progress(f"PUT /networkInterfaces/{vm} with server /servers/{destination}")
    put_at = clock()
    client.put(moved_document(nic, destination), if_match=str(etag) if etag else None)

    def since() -> float:
        return (clock() - put_at) * 1000.0

    _wait_ports(destination_dir, port, PROGRAMMED, timeout, f"host {destination} programs {vm}")
    programmed = since()
    adopted = 0
    if states:
        try:
            answer = control.call(
                destination_dir, "import-connections", port=port, connections=states
            )
        except ControlError as exc:
            why = f"host {destination} refused {vm}'s connections"
            raise LabError(f"{why}: {exc}") from exc
        adopted = int(answer.get("adopted", 0)) if isinstance(answer, dict) else 0
    interface = lab.names.vm_port(vm)
    try:
        keep_neighbors(lab.names.vm(vm))
        netns.move_link(lab.names.host(source), interface, lab.names.host(destination))
    except LabError as exc:
        raise LabError(f"VM {vm}'s veth to host {destination}: {exc}") from exc
    switched = since()
    lab.topology = target
    record_placement(lab.run_dir, vm, destination)
    _wait_ports(destination_dir, port, ATTACHED, timeout, f"host {destination} attaches {vm}")
    attached = since()
    progress(f"VM {vm}: on host {destination}'s switch ({adopted} connections adopted)")
    _wait_ports(source_dir, port, GONE, timeout, f"host {source} releases {vm}")
    released = since()
    wait_succeeded(client, [vm], timeout, progress)
    return MigrationReport(
        vm=vm, source=source, destination=destination, connections=len(states),
        adopted=adopted, programmed_ms=programmed, switched_ms=switched,
        attached_ms=attached, released_ms=released, succeeded_ms=since(), put_at=put_at,
    )  # fmt: skip


def migrate_running(
    running: RunningLab,
    vm: str,
    destination: str,
    progress: Progress = _quiet,
    *,
    timeout: float = MIGRATION_SECONDS,
) -> MigrationReport:
    """``migrate`` on a lab that ``orchestrator.up`` returned (its NIC document follows)."""
    urls = running.controller_urls or [running.controller_url]
    client = ControllerClient.connect_any(urls, access=running.access)
    try:
        report = migrate(running.lab, client, vm, destination, progress, timeout=timeout)
        running.nics[vm] = client.get(f"/networkInterfaces/{vm}")
    finally:
        client.close()
    return report


PROGRAMMED, ATTACHED, GONE = "programmed", "attached", "gone"


def _wait_ports(state_dir: Path, port: str, until: str, timeout: float, what: str) -> None:
    """Until the host of ``state_dir`` has ``port`` programmed (``PROGRAMMED``), or its
    interface too (``ATTACHED``), or no trace of it (``GONE``); ``LabError`` naming
    ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    try:
        with control.ControlClient(state_dir) as host:
            while not port_state(host.call("list-ports"), port, until):
                if time.monotonic() >= deadline:
                    raise LabError(f"{what}: not done after {timeout:g} s")
                time.sleep(_POLL)
    except ControlError as exc:
        raise LabError(f"{what}: {exc}") from exc


def port_state(rows: object, port: str, until: str) -> bool:
    """Whether ``list-ports`` ``rows`` show ``port`` in state ``until`` (see ``_wait_ports``)."""
    found = [r for r in rows if isinstance(r, dict) and r.get("name") == port] if isinstance(
        rows, list
    ) else []  # fmt: skip
    if until == GONE:
        return not any(r.get("programmed") or r.get("attached") for r in found)
    return any(r.get(until) for r in found)
