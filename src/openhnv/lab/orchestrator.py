"""``hnv lab up`` end to end: fabric, daemons, every resource through the REST API.

The order an operator would follow on a real datacenter:

1. the physical part (``builder.build``): namespaces, PA bridges, router, hosts, VM veths;
   and the edge (``edge_builder``): external networks, gateway hosts, sites, TORs;
   and the management network (``management``): each host's management address, the
   controller's veth into it;
2. the lab's ``hnv pki``, then ``hnv controller`` in the root namespace with its
   certificate (or, with ``controllers`` > 1, a three-member etcd cluster and that many
   controller replicas on it), then one ``hnv host --driver linux`` per host inside its
   namespace, serving OVSDB over SSL at its management address (``daemons``), with the
   kernel fast path when asked for (``--fastpath on``; ``auto``, the default, is on when
   this kernel and the built object allow it: the lab decides once, keeps the VMs'
   offloads on for it, and records the mode in ``<run_dir>/fastpath``);
3. the controller's resources, one ``PUT`` each (``resources.plan``): configuration,
   provider network, MAC pool, servers, ACLs, virtual networks, then each VM's NIC —
   whose answer gives the instanceId and MAC that turn the VM's veth into the NIC's port
   (``builder.attach_vm_port``);
4. waiting until the controller reports every NIC ``Succeeded``, i.e. programmed on
   every host that needs it;
5. the edge's resources (``edge_up``): gateways, public addresses, virtual gateways,
   bare-metal NICs; the sites' strongSwan and the TORs' tables.

Every step reports progress; a failure names its step, removes the whole lab (daemons
by pid, namespaces, run directory) and raises ``LabError``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from openhnv.agent.ndp import router_link_local
from openhnv.controller.northbound.render import DISTRIBUTED_ROUTER_MAC
from openhnv.lab import builder, daemons, dhcp6_client, dhcp_client, management, netns
from openhnv.lab.access import ApiAccess
from openhnv.lab.documents import Document
from openhnv.lab.edge_builder import build_edge
from openhnv.lab.edge_up import EdgeState, bring_up_edge, start_gateway_hosts
from openhnv.lab.errors import LabError
from openhnv.lab.resources import host_state_dir, infrastructure, mac_of, nic_resources
from openhnv.lab.rest import ControllerClient, instance_id, wait_succeeded
from openhnv.lab.topology import Topology
from openhnv.vswitch.fastpath.probe import probe

TOPOLOGY_FILE = "topology.yaml"
FASTPATH_FILE = "fastpath"
FASTPATH_MODES = ("auto", "on", "off")
PROVISION_SECONDS = 60.0
ROUTER_ADVERTISEMENT_SECONDS = 30.0  # the host sends one as soon as it programs the port

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass(slots=True)
class RunningLab:
    """A lab that is up: its fabric, its controller and each VM's NIC document."""

    lab: builder.Lab
    controller_url: str  # the first replica's
    nics: dict[str, Document] = field(default_factory=dict)
    controller_urls: list[str] = field(default_factory=list)
    edge: EdgeState = field(default_factory=EdgeState)  # gateways, sites, TORs (lab.edge_up)

    @property
    def topology(self) -> Topology:
        return self.lab.topology

    @property
    def name(self) -> str:
        return self.lab.topology.name

    @property
    def run_dir(self) -> Path:
        return self.lab.run_dir

    @property
    def access(self) -> ApiAccess | None:
        """The controllers' credentials (the lab's API PKI)."""
        return daemons.controller_access(self.lab.run_dir)

    def host_state_dir(self, host: str) -> Path:
        return host_state_dir(self.lab.run_dir, host)

    def vm_namespace(self, vm: str) -> str:
        return self.lab.names.vm(vm)

    def nic_mac(self, vm: str) -> str:
        return mac_of(self.nics[vm])


@contextlib.contextmanager
def step(description: str, progress: Progress, context: str | None = None) -> Iterator[None]:
    """Report ``description``; a failure inside becomes ``LabError("<context>: ...")``.

    ``context`` defaults to the description; "" adds nothing (the error names the step).
    """
    progress(description)
    prefix = description if context is None else context
    try:
        yield
    except (LabError, OSError, ValueError, httpx.HTTPError) as exc:
        raise LabError(f"{prefix}: {exc}" if prefix else str(exc)) from exc


def resolve_fastpath(mode: str, progress: Progress = _quiet) -> str:
    """``on`` or ``off`` for the hosts of a lab: ``auto`` is on when the kernel fast path
    can run here; ``on`` where it cannot is a ``LabError`` saying why."""
    if mode not in FASTPATH_MODES:
        raise LabError(f"fastpath {mode!r}: expected one of {', '.join(FASTPATH_MODES)}")
    if mode == "off":
        return mode
    why_not = probe()
    if why_not is None:
        return "on"
    if mode == "on":
        raise LabError(f"--fastpath on: the kernel fast path cannot run here: {why_not}")
    progress(f"kernel fast path off: {why_not}")
    return "off"


def fastpath_of(run_dir: Path) -> str | None:
    """The fast-path mode a lab's hosts run with (None: not recorded)."""
    try:
        return (run_dir / FASTPATH_FILE).read_text().strip() or None
    except OSError:
        return None


def start_host(lab: builder.Lab, host: str) -> int:
    """Start ``hnv host`` on ``host`` as ``up`` does, also again after a kill: its OVSDB
    over SSL at its management address with the lab's PKI, the recorded fast-path mode;
    then the DHCP client again of each of its ``dhcp: true`` VMs whose address went with
    a rebuilt host's links, once it holds a lease (``up`` starts the first clients
    itself, once the NICs are provisioned).
    Returns the host's pid once ready."""
    listen = management.plan(lab.topology).listen(host)
    mbps = lab.topology.host(host).uplink_mbps
    pid = daemons.start_host(
        lab.run_dir,
        lab.names.host(host),
        host,
        extra=() if mbps is None else ("--uplink-mbps", str(mbps)),
        listen=listen,
        pki=management.pki_dir(lab.run_dir),
        fastpath=fastpath_of(lab.run_dir) or "off",
    )
    clients = daemons.recorded(lab.run_dir)
    for vm in lab.topology.vms:
        if vm.host == host and vm.dhcp and dhcp_client.daemon_name(vm.name) in clients:
            dhcp_client.restart_unbound(lab.run_dir, lab.names.vm(vm.name), vm.name)
        if vm.host == host and vm.dhcp and dhcp6_client.daemon_name(vm.name) in clients:
            dhcp6_client.restart_unbound(lab.run_dir, lab.names.vm(vm.name), vm.name)
    return pid


def rebuild_host(lab: builder.Lab, host: str, ports: Mapping[str, tuple[str, str]]) -> None:
    """Make ``host``'s namespace again as ``up`` made it, as a rebooted host comes back:
    uplinks, its VMs' veths (given back ``ports``' NIC ``(mac, port_id)``) with the
    recorded offloads, and its leg of the management network. Its daemons are not
    started here (``start_host``)."""
    offloads = fastpath_of(lab.run_dir) == "on"
    builder.rebuild_host(lab, host, ports, vm_offloads=offloads)
    management.attach_host(management.plan(lab.topology), host)


def up(
    topology: Topology,
    *,
    run_root: Path = builder.RUN_ROOT,
    progress: Progress = _quiet,
    topology_text: str | None = None,
    provision_timeout: float = PROVISION_SECONDS,
    controllers: int = 1,
    fastpath: str = "auto",
) -> RunningLab:
    """Build the lab and bring every VM's NIC to ``Succeeded``; all or nothing."""
    if controllers < 1:
        raise LabError(f"--controllers must be at least 1, not {controllers}")
    mode = resolve_fastpath(fastpath, progress)
    lab = builder.build(topology, run_root=run_root, progress=progress, vm_offloads=mode == "on")
    try:
        build_edge(lab, progress)
        management.build(management.plan(topology), progress)
        (lab.run_dir / FASTPATH_FILE).write_text(mode + "\n")
        return _bring_up(lab, progress, topology_text, provision_timeout, controllers, mode)
    except BaseException as exc:
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        progress(f"lab up {reason}: removing lab {topology.name}")
        builder.teardown(topology, run_root)
        raise


def _bring_up(
    lab: builder.Lab,
    progress: Progress,
    topology_text: str | None,
    provision_timeout: float,
    controllers: int,
    fastpath: str,
) -> RunningLab:
    topology, run_dir = lab.topology, lab.run_dir
    if topology_text is not None:
        (run_dir / TOPOLOGY_FILE).write_text(topology_text, encoding="utf-8")
    with step("pki: the lab's CAs and the controller's certificate", progress):
        pki = management.make_pki(run_dir)
    if controllers == 1:
        with step("controller: hnv controller on 127.0.0.1 (root namespace)", progress):
            urls = [daemons.start_controller(run_dir, pki=pki)]
        progress(f"controller serving {urls[0]}/networking/v1/")
    else:
        what = f"controllers: etcd x{daemons.ETCD_MEMBERS}, hnv controller x{controllers}"
        with step(f"{what} on 127.0.0.1 (root namespace)", progress):
            urls = daemons.start_cluster(run_dir, controllers, pki=pki)
        for url in urls:
            progress(f"controller replica serving {url}/networking/v1/")
    url = urls[0]
    addresses = management.plan(topology)
    for host in topology.hosts:
        namespace = lab.names.host(host.name)
        listen = addresses.listen(host.name)
        what = f"hnv host --driver linux --fastpath {fastpath} --listen {listen} in {namespace}"
        with step(f"host {host.name}: {what}", progress):
            start_host(lab, host.name)
    start_gateway_hosts(lab, progress)
    running = RunningLab(lab=lab, controller_url=url, controller_urls=urls)
    client = ControllerClient.connect_any(urls, access=daemons.controller_access(run_dir))
    try:
        for resource in infrastructure(topology, run_dir):
            with step(f"PUT {resource.path}", progress, context=""):
                client.put(resource)
        for resource in nic_resources(topology):
            vm = resource.resource_id
            where = f"VM {vm} on {topology.vm(vm).host}"
            with step(f"PUT {resource.path} ({where})", progress, context=where):
                document = client.put(resource)
                running.nics[vm] = document
                builder.attach_vm_port(lab, vm, mac_of(document), instance_id(document))
        with step(f"waiting for {len(running.nics)} NICs to be Succeeded", progress):
            wait_succeeded(client, running.nics, provision_timeout, progress)
        for vm in list(running.nics):
            running.nics[vm] = client.get(f"/networkInterfaces/{vm}")
        for dhcp_vm in (v for v in topology.vms if v.dhcp):
            namespace = lab.names.vm(dhcp_vm.name)
            with step(f"VM {dhcp_vm.name}: DHCP client (udhcpc) in {namespace}", progress):
                dhcp_client.start(run_dir, namespace, dhcp_vm.name)
            if dhcp_vm.ip6 is not None:
                with step(f"VM {dhcp_vm.name}: DHCPv6 client (dhclient -6)", progress):
                    dhcp6_client.start(run_dir, namespace, dhcp_vm.name)
        router = router_link_local(DISTRIBUTED_ROUTER_MAC)
        for six in (v for v in topology.vms if v.ip6 is not None):
            namespace = lab.names.vm(six.name)
            with step(f"VM {six.name}: IPv6 default route via {router} (RA)", progress):
                netns.wait_default_route6(namespace, router, ROUTER_ADVERTISEMENT_SECONDS)
        running.edge = bring_up_edge(lab, client, progress, provision_timeout)
    finally:
        client.close()
    return running


def down(name: str, run_root: Path = builder.RUN_ROOT) -> builder.CleanReport:
    """Stop the lab's daemons by pid and remove its namespaces and run directory."""
    return builder.clean(builder.LabNames(name).prefix, run_root)


def leftovers(name: str, run_root: Path = builder.RUN_ROOT) -> list[str]:
    """What still exists of a lab: namespaces, root links, run directory, live daemons."""
    prefix = builder.LabNames(name).prefix
    found = list(netns.list_namespaces(prefix))
    found += [f"link {n}" for n in netns.root_link_names(prefix)]
    found += [f"link {n}" for n in netns.root_link_names(builder.LabNames(name).management_link)]
    run_dir = builder.run_dir_of(name, run_root)
    if run_dir.exists():
        found.append(f"directory {run_dir}")
        for daemon, pid in daemons.recorded(run_dir).items():
            if builder.alive(pid):
                found.append(f"daemon {daemon} pid {pid}")
    return found
