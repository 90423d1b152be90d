"""``hnv demo``: the seed's figure 8 on a lab, with live traffic, once per encapsulation.

Contoso (VSID 5001) and Fabrikam (VSID 6001) both use 10.1.1.0/24: each has SQL at
10.1.1.11 on host1 (PA 192.168.1.10) and Web at 10.1.1.12 on host2 (PA 192.168.2.20,
VLAN 20), the PA subnets joined by a router (``examples/figure8.yaml``). For VXLAN and
then NVGRE the demo brings the lab up through the REST API and checks:

- each tenant's Web opens TCP to its own SQL on port 1433 and gets an answer naming
  its tenant (a tiny server in the SQL VM's namespace);
- a cross-tenant attempt (Contoso Web aiming its frame at Fabrikam SQL's MAC) gets
  nothing and never reaches the physical network in Fabrikam's VSID;
- on the PA links, the tenants' packets are encapsulated between the hosts' PAs with
  their own VNI/VSID (capture decoded with ``openhnv.packet``);
- each host's PA-CA mapping table (``hnv host pa-ca-mapping``) holds the CAs.

With ``--gateways`` it runs ``examples/gateways.yaml`` instead: Contoso and Fabrikam
(same CAs) each reach the Internet's server through outbound NAT behind a public
address of their own, Contoso its on-premises site over IPsec (strongSwan on both
ends), Fabrikam a physical server on its L3 VLAN and a bare-metal server behind a VXLAN
TOR, and neither reaches the other's (``lab.edge_checks``).

It prints what it saw and exits 0 only when every check passed. The lab is removed at
the end, also after a failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import openhnv
from openhnv.lab import builder, capture, daemons, orchestrator, traffic
from openhnv.lab.capture import TunnelRecord
from openhnv.lab.edge_checks import Check, edge_checks
from openhnv.lab.errors import LabError
from openhnv.lab.rest import ControllerClient
from openhnv.lab.topology import Topology, lab_name_problem, load

EXAMPLES = Path(openhnv.__file__).resolve().parents[2] / "examples"
FIGURE8 = EXAMPLES / "figure8.yaml"
GATEWAYS = EXAMPLES / "gateways.yaml"
SQL_PORT = 1433
DEFAULT_LAB = "demo"
ENCAPSULATIONS = ("vxlan", "nvgre")
CAPTURE_LINES = 4


@dataclass(frozen=True, slots=True)
class Tenant:
    """One tenant of figure 8: its VNet, VSID, SQL and Web VMs."""

    network: str
    vsid: int
    sql: str
    web: str


def tenants(topology: Topology) -> list[Tenant]:
    """Figure 8's tenants: per VNet, the VM named ``*-sql`` and the one named ``*-web``."""
    found = []
    for network in topology.virtual_networks:
        vms = [vm for vm in topology.vms if vm.virtual_network == network.name]
        sql = next((vm.name for vm in vms if vm.name.endswith("sql")), None)
        web = next((vm.name for vm in vms if vm.name.endswith("web")), None)
        vsid = network.subnets[0].vsid
        if sql is None or web is None or vsid is None:
            raise LabError(f"{network.name}: the demo needs a *-sql and a *-web VM and a VSID")
        found.append(Tenant(network.name, vsid, sql, web))
    return found


def _say(text: str = "") -> None:
    print(text, flush=True)


def _provider_addresses(running: orchestrator.RunningLab, host: str) -> list[str]:
    access = daemons.controller_access(running.run_dir)
    client = ControllerClient.connect(running.controller_url, access=access)
    try:
        server = client.get(f"/servers/{host}")
    finally:
        client.close()
    pas = server.get("properties", {}).get("providerAddresses", [])
    return [str(pa["address"]) for pa in pas if isinstance(pa, dict) and "address" in pa]


def _mapping_table(running: orchestrator.RunningLab, host: str) -> Check:
    state_dir = running.host_state_dir(host)
    argv = daemons.hnv_argv("host", "pa-ca-mapping", "--state-dir", str(state_dir))
    result = subprocess.run(
        argv, capture_output=True, text=True, env=daemons.python_env(), timeout=30, check=False
    )
    _say(f"  PA-CA mapping table of {host} (hnv host pa-ca-mapping):")
    for line in (result.stdout or result.stderr).strip().splitlines():
        _say(f"    {line}")
    cas = {str(vm.ip) for vm in running.topology.vms}
    shown = all(ca in result.stdout for ca in cas)
    detail = "" if shown else f"exit {result.returncode}, CAs {sorted(cas)} not all listed"
    return Check(f"{host}: PA-CA mapping lists every CA", result.returncode == 0 and shown, detail)


def _tunnel_check(
    records: list[TunnelRecord],
    tenant: Tenant,
    encapsulation: str,
    web_pas: list[str],
    sql_pas: list[str],
    sql_ip: str,
    vlan: int | None,
) -> Check:
    mine = [
        r
        for r in records
        if r.vsid == tenant.vsid and r.inner_dst == sql_ip and r.inner_dport == SQL_PORT
    ]
    good = [
        r
        for r in mine
        if r.encapsulation == encapsulation
        and r.outer_src in web_pas
        and r.outer_dst in sql_pas
        and r.vlan == vlan
    ]
    name = (
        f"{tenant.network}: Web->SQL packets on the PA link are {encapsulation}"
        f" VSID {tenant.vsid}, PA {'/'.join(web_pas)} -> {'/'.join(sql_pas)}"
        + ("" if vlan is None else f" tagged VLAN {vlan}")
    )
    detail = "" if good else f"{len(mine)} packets of the flow seen, none matching"
    return Check(name, bool(good), detail)


def scenario(topology: Topology, run_root: Path, fastpath: str = "auto") -> list[Check]:
    """Figure 8 on one encapsulation: up, traffic, capture, mapping tables, down."""
    checks: list[Check] = []
    encapsulation = topology.encapsulation
    _say(f"=== figure 8 over {encapsulation.upper()} (lab {topology.name})")
    step = 0

    def progress(message: str) -> None:
        nonlocal step
        step += 1
        _say(f"[{step:>3}] {message}")

    orchestrator.down(topology.name, run_root)
    running = orchestrator.up(topology, run_root=run_root, progress=progress, fastpath=fastpath)
    try:
        checks.append(Check("lab up: every NIC Succeeded through the REST API", True))
        checks += _traffic(running)
    finally:
        _say(f"removing lab {topology.name}")
        orchestrator.down(topology.name, run_root)
    return checks


def gateway_scenario(topology: Topology, run_root: Path) -> list[Check]:
    """The gateways' topology: up, every way out and its isolation, down."""
    _say(f"=== gateways: NAT, IPsec, L3, a TOR (lab {topology.name})")
    step = 0

    def progress(message: str) -> None:
        nonlocal step
        step += 1
        _say(f"[{step:>3}] {message}")

    orchestrator.down(topology.name, run_root)
    running = orchestrator.up(topology, run_root=run_root, progress=progress)
    try:
        checks = [Check("lab up: every NIC and virtual gateway through the REST API", True)]
        _say("traffic:")
        checks += edge_checks(running, _say)
    finally:
        _say(f"removing lab {topology.name}")
        orchestrator.down(topology.name, run_root)
    return checks


def _traffic(running: orchestrator.RunningLab) -> list[Check]:
    topology = running.topology
    checks: list[Check] = []
    people = tenants(topology)
    responders: dict[str, traffic.TcpResponder] = {}
    with capture.PaCapture(topology) as pa_capture:
        try:
            for tenant in people:
                sql = topology.vm(tenant.sql)
                answer = f"{tenant.network} SQL at {sql.ip} (VSID {tenant.vsid})\n".encode()
                responders[tenant.network] = traffic.TcpResponder(
                    running.vm_namespace(sql.name), str(sql.ip), SQL_PORT, answer
                )
            _say("traffic:")
            for tenant in people:
                sql, web = topology.vm(tenant.sql), topology.vm(tenant.web)
                reply = traffic.tcp_answer(
                    running.vm_namespace(web.name), str(sql.ip), SQL_PORT, b"SELECT 1\n"
                )
                text = "no answer" if reply is None else reply.decode(errors="replace").strip()
                _say(f"  {web.name} ({web.ip}) -> {sql.ip}:{SQL_PORT}: {text}")
                ok = reply is not None and text.startswith(f"{tenant.network} SQL")
                checks.append(Check(f"{tenant.network}: Web reaches its own SQL on TCP 1433", ok))
            checks += _cross_tenant(running, people, responders)
            time.sleep(0.3)
            records = capture.tunnels(pa_capture.snapshot())
        finally:
            for responder in responders.values():
                responder.close()
    _say(f"capture on the PA links ({len(records)} encapsulated packets), first of each VSID:")
    for tenant in people:
        for record in [r for r in records if r.vsid == tenant.vsid][:CAPTURE_LINES]:
            _say(f"  {record.host:>6} | {record.line}")
    for tenant in people:
        sql, web = topology.vm(tenant.sql), topology.vm(tenant.web)
        web_pas = _provider_addresses(running, web.host)
        sql_pas = _provider_addresses(running, sql.host)
        vlan = topology.pa_subnet(topology.host(web.host).pa_subnet).vlan or None
        checks.append(
            _tunnel_check(
                records, tenant, topology.encapsulation, web_pas, sql_pas, str(sql.ip), vlan
            )
        )
    intruder = people[0]
    intruder_mac = running.nic_mac(intruder.web)
    leaked = [r for r in records if r.inner_src_mac == intruder_mac and r.vsid != intruder.vsid]
    checks.append(
        Check(
            f"{intruder.network} Web's frames never appear under another tenant's VSID",
            not leaked,
            "; ".join(r.line for r in leaked[:2]),
        )
    )
    for host in topology.hosts:
        checks.append(_mapping_table(running, host.name))
    return checks


def _cross_tenant(
    running: orchestrator.RunningLab,
    people: list[Tenant],
    responders: dict[str, traffic.TcpResponder],
) -> list[Check]:
    """Contoso Web aims at Fabrikam SQL's MAC: nothing may answer."""
    topology = running.topology
    intruder, victim = people[0], people[1]
    web, target = topology.vm(intruder.web), topology.vm(victim.sql)
    namespace = running.vm_namespace(web.name)
    before = len(responders[victim.network].peers)
    victim_mac = running.nic_mac(target.name)
    traffic.set_neighbor(namespace, str(target.ip), victim_mac)
    reason = ""
    try:
        try:
            reply: bytes | None = traffic.tcp_request(
                namespace, str(target.ip), SQL_PORT, b"SELECT secrets\n", timeout=2.0
            )
        except OSError as exc:
            reply, reason = None, str(exc) or type(exc).__name__
    finally:
        traffic.flush_neighbor(namespace, str(target.ip))
    reached = len(responders[victim.network].peers) - before
    shown = reason if reply is None else reply.decode(errors="replace").strip()
    _say(f"  {web.name} -> {target.ip}:{SQL_PORT} at {victim.network}'s MAC {victim_mac}: {shown}")
    ok = reply is None and reached == 0
    return [
        Check(
            f"cross-tenant: {intruder.network} Web cannot reach {victim.network} SQL",
            ok,
            "" if ok else f"answer {shown!r}, {reached} connections reached it",
        )
    ]


_MAIN_PID = os.getpid()


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the demo like Ctrl-C, so that its cleanup runs.

    Only in the demo's own process: a forked helper (pyroute2 forks one per namespace)
    inherits this handler and must simply die, not clean up the lab.
    """
    if os.getpid() != _MAIN_PID:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hnv demo", description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default=DEFAULT_LAB, help="lab name (default %(default)s)")
    parser.add_argument("--topology", type=Path, default=FIGURE8, help=argparse.SUPPRESS)
    parser.add_argument(
        "--encapsulation", choices=ENCAPSULATIONS, action="append", help="only this one"
    )
    parser.add_argument(
        "--gateways", action="store_true",
        help=f"the gateways' topology ({GATEWAYS.name}) instead of figure 8",
    )  # fmt: skip
    parser.add_argument("--run-root", type=Path, default=builder.RUN_ROOT, help=argparse.SUPPRESS)
    parser.add_argument(
        "--fastpath", choices=orchestrator.FASTPATH_MODES, default="auto",
        help="the hosts' kernel fast path (default %(default)s: on when this kernel allows)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    problem = lab_name_problem(args.lab)
    if problem:
        print(f"hnv demo: {problem}", file=sys.stderr)
        return 2
    global _MAIN_PID
    _MAIN_PID = os.getpid()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    checks: list[Check] = []
    try:
        if args.gateways:
            checks += gateway_scenario(
                dataclasses.replace(load(GATEWAYS), name=args.lab), args.run_root
            )
        base = dataclasses.replace(load(args.topology), name=args.lab)
        for encapsulation in [] if args.gateways else args.encapsulation or ENCAPSULATIONS:
            topology = dataclasses.replace(base, encapsulation=encapsulation)
            results = scenario(topology, args.run_root, args.fastpath)
            checks += [dataclasses.replace(c, name=f"[{encapsulation}] {c.name}") for c in results]
    except LabError as exc:
        checks.append(Check("demo ran to the end", False, str(exc)))
    except KeyboardInterrupt:
        orchestrator.down(args.lab, args.run_root)
        print("hnv demo: interrupted; lab removed", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        orchestrator.down(args.lab, args.run_root)
    _say("=== checks")
    for check in checks:
        mark = "PASS" if check.ok else "FAIL"
        _say(f"  {mark}  {check.name}" + (f": {check.detail}" if check.detail else ""))
    failed = [c for c in checks if not c.ok]
    _say(f"{len(checks) - len(failed)}/{len(checks)} checks passed")
    return 1 if failed else 0
