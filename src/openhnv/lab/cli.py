"""``hnv lab``: build, inspect and remove a lab datacenter in network namespaces.

    hnv lab up TOPOLOGY.yaml [--controllers N] [--fastpath auto|on|off]
                                  build the physical network, start the controller (N > 1:
                                  three etcd members and N controller replicas) and the
                                  hosts (with the kernel fast path: auto, on or off),
                                  create every resource through the REST API
    hnv lab down [LAB]            remove one lab (the only one when LAB is omitted)
    hnv lab status [LAB]          what exists of each lab
    hnv lab exec [--lab LAB] VM -- CMD...   run CMD inside a VM's namespace
    hnv lab host [--lab LAB] HOST -- CMD... run CMD inside a host's namespace with
                                  HNV_STATE_DIR set, e.g. `-- hnv vfp list-ports`
    hnv lab migrate [--lab LAB] VM --to HOST
                                  live-migrate a VM: its port on HOST, its NIC's server
                                  through REST, its connections and its veth moved
    hnv lab clean                 remove every hnv- namespace, link and recorded daemon

``up`` saves the topology in ``/run/openhnv/<lab>/topology.yaml`` so that the other
subcommands know the lab without the file; ``migrate`` records where VMs moved
(``placement.json`` beside it).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from openhnv.lab import builder, daemons, migration, netns, orchestrator
from openhnv.lab.documents import Document
from openhnv.lab.errors import LabError
from openhnv.lab.resources import host_state_dir
from openhnv.lab.rest import ControllerClient, provisioning_state
from openhnv.lab.topology import Topology, lab_name_problem, load

TOPOLOGY_FILE = orchestrator.TOPOLOGY_FILE


def _labs(run_root: Path) -> list[str]:
    """Labs that exist: by run directory or by namespace."""
    found = {p.name for p in run_root.iterdir() if p.is_dir()} if run_root.is_dir() else set()
    for name in netns.list_namespaces():
        lab = name[len(netns.PREFIX) :].split("-", 1)[0]
        if lab:
            found.add(lab)
    return sorted(found)


def _pick_lab(requested: str | None, run_root: Path) -> str:
    labs = _labs(run_root)
    if requested is not None:
        problem = lab_name_problem(requested)
        if problem:
            raise LabError(problem)
        return requested
    if len(labs) == 1:
        return labs[0]
    if not labs:
        raise LabError("no lab is up")
    raise LabError(f"several labs are up ({', '.join(labs)}): name one")


def _saved_topology(lab: str, run_root: Path) -> Topology | None:
    """The lab's topology with each VM where it runs now (after ``migrate``)."""
    run_dir = builder.run_dir_of(lab, run_root)
    path = run_dir / TOPOLOGY_FILE
    return migration.placed(load(path), migration.placement(run_dir)) if path.exists() else None


def _up(args: argparse.Namespace) -> int:
    topology = load(args.topology)
    step = 0

    def progress(message: str) -> None:
        nonlocal step
        step += 1
        print(f"[{step:>3}] {message}", flush=True)

    text = Path(args.topology).read_text(encoding="utf-8")
    running = orchestrator.up(
        topology,
        run_root=args.run_root,
        progress=progress,
        topology_text=text,
        provision_timeout=args.timeout,
        controllers=args.controllers,
        fastpath=args.fastpath,
    )
    print(
        f"lab {topology.name} is up: {len(topology.pa_subnets)} PA subnets,"
        f" {len(topology.hosts)} hosts, {len(topology.vms)} VMs, controller"
        f" {running.controller_url}/networking/v1/"
        f" (try `hnv lab exec {topology.vms[0].name} -- ip addr`)"
    )
    access = daemons.controller_access(running.run_dir)
    if access is not None:
        print(
            f"the controller wants a client certificate or a token: curl --cacert {access.ca}"
            f" --cert {access.admin_cert} --key {access.admin_key}"
            f" {running.controller_url}/networking/v1/networkInterfaces"
        )
    return 0


def _down(args: argparse.Namespace) -> int:
    lab = _pick_lab(args.lab, args.run_root)
    report = builder.clean(builder.LabNames(lab).prefix, args.run_root)
    print(
        f"lab {lab} removed: {len(report.namespaces)} namespaces,"
        f" {len(report.daemons)} daemons stopped"
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    labs = [args.lab] if args.lab else _labs(args.run_root)
    if not labs:
        print("no lab is up")
        return 0
    for lab in labs:
        names = builder.LabNames(lab)
        present = set(netns.list_namespaces(names.prefix))
        topology = _saved_topology(lab, args.run_root)
        run_dir = builder.run_dir_of(lab, args.run_root)
        print(f"lab {lab}: {len(present)} namespaces")
        for daemon, pid in daemons.recorded(run_dir).items():
            mark = "running" if builder.alive(pid) else "DEAD"
            print(f"  daemon {daemon:<16} {mark:<8} pid {pid}")
        urls = daemons.controller_urls(run_dir)
        for url in urls:
            leads = _leads(url, run_dir) if len(urls) > 1 else ""
            print(f"  controller {url}/networking/v1/{leads}")
        if topology is None:
            for name in sorted(present):
                print(f"  {name}")
            continue
        print(f"  encapsulation {topology.encapsulation}")
        print(f"  kernel fast path {orchestrator.fastpath_of(run_dir) or 'unknown'}")
        nics = _nic_documents(urls, run_dir)
        for host in topology.hosts:
            mark = "up" if names.host(host.name) in present else "MISSING"
            server = nics.get(("servers", host.name.lower()))
            pas = ", ".join(_provider_addresses(server))
            print(
                f"  host {host.name:<16} {mark:<8} PA subnet {host.pa_subnet} {pas}"
                f"  {_configuration_state(server)}".rstrip()
            )
        for vm in topology.vms:
            mark = "up" if names.vm(vm.name) in present else "MISSING"
            where = f"{vm.logical_network or vm.virtual_network}/{vm.subnet}"
            nic = nics.get(("networkInterfaces", vm.name.lower()))
            state = "no NIC" if nic is None else provisioning_state(nic)
            mac = "" if nic is None else nic.get("properties", {}).get("privateMacAddress", "")
            print(
                f"  vm   {vm.name:<16} {mark:<8} {vm.ip} in {where} on {vm.host}"
                f"  NIC {state} {mac}".rstrip()
            )
    return 0


def _leads(url: str, run_dir: Path) -> str:
    """`` (leads)`` when the replica at ``url`` says it publishes, `` (down)`` if silent."""
    client = ControllerClient.connect(url, timeout=2.0, access=daemons.controller_access(run_dir))
    try:
        state = client.diagnostics()
    except LabError:
        return "  (down)"
    finally:
        client.close()
    return "  (leads)" if state.get("properties", {}).get("publishing") else ""


def _nic_documents(urls: list[str], run_dir: Path) -> dict[tuple[str, str], Document]:
    """Servers and NICs from the lab's controller (any replica), or nothing if none answers."""
    if not urls:
        return {}
    access = daemons.controller_access(run_dir)
    client = ControllerClient.connect_any(urls, timeout=2.0, access=access)
    found: dict[tuple[str, str], Document] = {}
    try:
        for collection in ("servers", "networkInterfaces"):
            for document in client.list(collection):
                found[(collection, str(document.get("resourceId", "")).lower())] = document
    except LabError as exc:
        print(f"  controller: {exc}")
    finally:
        client.close()
    return found


def _configuration_state(server: Document | None) -> str:
    """``Success``, or ``Warning HostNotConnected`` as the controller sees the host."""
    state = {} if server is None else server.get("properties", {}).get("configurationState")
    if not isinstance(state, dict) or not state:
        return ""
    status = str(state.get("status", ""))
    details = [d for d in state.get("detailedInfo", []) if isinstance(d, dict)]
    codes = [str(d.get("code")) for d in details if d.get("code") not in (None, status)]
    return " ".join([status, *codes]).strip()


def _provider_addresses(server: Document | None) -> list[str]:
    if server is None:
        return []
    pas = server.get("properties", {}).get("providerAddresses", [])
    return [str(pa.get("address")) for pa in pas if isinstance(pa, dict)]


def _exec(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise LabError("give a command after the VM name, e.g. `-- ping 10.1.1.12`")
    if args.lab is None:
        suffix = f"-vm-{args.vm}"
        matches = [n for n in netns.list_namespaces() if n.endswith(suffix)]
        matches = [n for n in matches if "-" not in n[len(netns.PREFIX) : -len(suffix)]]
        if not matches:
            raise LabError(f"no VM named {args.vm!r} in any lab")
        if len(matches) > 1:
            raise LabError(f"VM {args.vm!r} is in several labs ({', '.join(matches)})")
        namespace = matches[0]
    else:
        namespace = builder.LabNames(_pick_lab(args.lab, args.run_root)).vm(args.vm)
        if namespace not in netns.list_namespaces(namespace):
            raise LabError(f"no VM named {args.vm!r} in lab {args.lab}")
    return subprocess.run(["ip", "netns", "exec", namespace, *command], check=False).returncode


def _host(args: argparse.Namespace) -> int:
    """Run a command in a host's namespace with HNV_STATE_DIR set to its state directory."""
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise LabError("give a command after the host name, e.g. `-- hnv vfp list-ports`")
    lab = _pick_lab(args.lab, args.run_root)
    namespace = builder.LabNames(lab).host(args.host)
    if namespace not in netns.list_namespaces(namespace):
        raise LabError(f"no host named {args.host!r} in lab {lab}")
    run_dir = builder.run_dir_of(lab, args.run_root)
    env = dict(daemons.python_env())
    env["HNV_STATE_DIR"] = str(host_state_dir(run_dir, args.host))
    argv = ["ip", "netns", "exec", namespace, *command]
    return subprocess.run(argv, check=False, env=env).returncode


def _migrate(args: argparse.Namespace) -> int:
    lab = _pick_lab(args.lab, args.run_root)
    topology = _saved_topology(lab, args.run_root)
    if topology is None:
        raise LabError(f"lab {lab} has no saved topology (was it made by `hnv lab up`?)")
    run_dir = builder.run_dir_of(lab, args.run_root)
    urls = daemons.controller_urls(run_dir)
    if not urls:
        raise LabError(f"lab {lab} has no controller")
    running = builder.Lab(topology=topology, names=builder.LabNames(lab), run_dir=run_dir)
    client = ControllerClient.connect_any(urls, access=daemons.controller_access(run_dir))

    def progress(message: str) -> None:
        print(f"  {message}", flush=True)

    try:
        report = migration.migrate(running, client, args.vm, args.to, progress,
                                   timeout=args.timeout)  # fmt: skip
    finally:
        client.close()
    print(
        f"VM {report.vm} moved from {report.source} to {report.destination}:"
        f" port programmed {report.programmed_ms:.0f} ms after the PUT, veth moved at"
        f" {report.switched_ms:.0f} ms and attached at {report.attached_ms:.0f} ms,"
        f" source released at {report.released_ms:.0f} ms,"
        f" NIC Succeeded at {report.succeeded_ms:.0f} ms;"
        f" {report.adopted}/{report.connections} connections carried"
    )
    return 0


def _clean(args: argparse.Namespace) -> int:
    report = builder.clean(netns.PREFIX, args.run_root)
    print(
        f"removed {len(report.namespaces)} namespaces, {len(report.links)} root links,"
        f" stopped {len(report.daemons)} daemons"
    )
    for name in (*report.namespaces, *report.links):
        print(f"  {name}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hnv lab", description=__doc__.splitlines()[0])
    parser.add_argument("--run-root", type=Path, default=builder.RUN_ROOT, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = sub.add_parser("up", help="build a lab from a topology file")
    up.add_argument("topology", type=Path, help="topology YAML (see docs/topology.md)")
    up.add_argument(
        "--controllers",
        type=int,
        default=1,
        help="controller replicas; more than one runs them on a three-member etcd (default 1)",
    )
    up.add_argument(
        "--timeout",
        type=float,
        default=orchestrator.PROVISION_SECONDS,
        help="seconds to wait for every NIC to be Succeeded (default %(default)g)",
    )
    up.add_argument(
        "--fastpath", choices=orchestrator.FASTPATH_MODES, default="auto",
        help="the hosts' kernel fast path: auto (on when this kernel allows), on, off",
    )  # fmt: skip
    up.set_defaults(run=_up)
    down = sub.add_parser("down", help="remove a lab")
    down.add_argument("lab", nargs="?", help="lab name (default: the only lab)")
    down.set_defaults(run=_down)
    status = sub.add_parser("status", help="show what exists of each lab")
    status.add_argument("lab", nargs="?")
    status.set_defaults(run=_status)
    run = sub.add_parser("exec", help="run a command inside a VM's namespace")
    run.add_argument("--lab", help="lab name (default: the lab holding VM)")
    run.add_argument("vm")
    run.add_argument("command", nargs=argparse.REMAINDER)
    run.set_defaults(run=_exec)
    host = sub.add_parser(
        "host", help="run a command in a host's namespace, HNV_STATE_DIR set (hnv vfp ...)"
    )
    host.add_argument("--lab", help="lab name (default: the only lab)")
    host.add_argument("host")
    host.add_argument("command", nargs=argparse.REMAINDER)
    host.set_defaults(run=_host)
    move = sub.add_parser(
        "migrate", help="live-migrate a VM to another host (its connections survive)"
    )
    move.add_argument("--lab", help="lab name (default: the only lab)")
    move.add_argument("vm")
    move.add_argument("--to", required=True, metavar="HOST", help="the destination host")
    move.add_argument(
        "--timeout", type=float, default=migration.MIGRATION_SECONDS,
        help="seconds to wait for each step (default %(default)g)",
    )  # fmt: skip
    move.set_defaults(run=_migrate)
    clean = sub.add_parser("clean", help="remove every hnv- namespace, link and daemon")
    clean.set_defaults(run=_clean)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result: int = args.run(args)
    except LabError as exc:
        print(f"hnv lab {args.action}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hnv lab {args.action}: interrupted", file=sys.stderr)
        return 130
    return result
