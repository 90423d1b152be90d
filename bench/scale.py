"""Benchmark the southbound at datacenter scale: 1,000 hosts, 100,000 NICs.

Every host is a real process: ``--hosts`` private ``ovsdb-server``s (each its own
process, on a unix socket), of which ``--agents`` are whole ``hnv host --driver none``
processes whose agents program VFP from the rows. The northbound (``--nics`` NICs in
virtual networks of varied size, each network on a window of consecutive hosts,
``NICS_PER_HOST_IN_VNET`` of its NICs per host) is written through the controller's own
service into its SQLite store; then ``hnv controller`` runs as a subprocess:

- ``initial_sync_seconds``: controller start -> every host holds its rows (empty hosts);
- ``resync_seconds``: the controller SIGKILLed and started again -> every host in sync
  (target 60 s): each host's Global row names the digest of the state compiled for it,
  or the host was read in full and sent the difference; ``resync_transactions``: what
  that sent (0 when every row was already right); ``verified_seconds``: until every
  host was also read in full and compared (the audits that follow a restart);
- ``put_to_commit``: one NIC PUT -> its mapping committed in the OVSDB of every host of its
  virtual network (a server-side ``wait`` operation at each of those hosts, sent before
  the PUT, answers when the row is there), median and p99 over ``--trials``, networks of
  every size in turn (target median 1 s); ``put_to_vfp`` the same until the agents'
  VFP hold it, for trials whose network has an agent host;
- the controller's RSS after the resync, per NIC and per host.

``--trend 100,200,500`` first runs the same at those host counts (``NICS_PER_HOST`` NICs
per host) so the growth shows; a machine that cannot hold ``--hosts`` ovsdb-servers
says so in ``hosts_refused`` and reports the largest run that worked. Prints one JSON
object; ``--smoke`` is a run of a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore
from openhnv.host.control import ControlClient
from openhnv.lab import daemons
from openhnv.lab import documents as nb
from openhnv.ovsdb.aio import connect
from openhnv.ovsdb.server import OvsdbServer
from openhnv.testing.processes import HostProcess, stop_process

NICS_PER_HOST = 100  # the ratio: 100,000 NICs on 1,000 hosts
NICS_PER_HOST_IN_VNET = 20  # how densely a virtual network packs its hosts
SIZE_SHARES = ((1000, 0.1), (200, 0.2), (50, 0.4), (10, 0.3))  # (NICs per VNet, share)
SYNC_TIMEOUT = 1800.0
TRIAL_TIMEOUT = 30.0
START_WORKERS = 4
PA_SUBNET = "pa"
PA_PREFIX = "192.168.0.0/16"
PA_GATEWAY = "192.168.0.1"
PA_POOL = ("192.168.0.10", "192.168.255.250")
PA_NIC = "pnic1"
CA_SPACE = "172.16.0.0/12"  # every VNet's own
VIRTUAL_SUBNET = "s"
DIAGNOSTICS = "/networking/v1/diagnostics/networkControllerState"
RESYNC_TARGET_SECONDS = 60
PUT_TARGET_MS = 1000


@dataclass
class VNet:
    name: str
    index: int
    size: int
    hosts: list[int]  # host indexes, a window of consecutive hosts

    @property
    def vsid(self) -> int:
        return 10_000 + self.index


@dataclass
class Plan:
    hosts: int
    nics: int
    vnets: list[VNet] = field(default_factory=list)

    @property
    def mapping_rows(self) -> int:
        """Ucast_Macs_Remote rows over every host: each host holds its VNets' mappings."""
        return sum(v.size * len(v.hosts) for v in self.vnets)


def plan(hosts: int, nics: int) -> Plan:
    """Virtual networks of every size class, NICs spread over windows of hosts."""
    made = Plan(hosts, 0)
    start = 0
    for size, share in SIZE_SHARES:
        size = max(2, min(size, nics // 4))
        for _ in range(max(1, round(nics * share / size))):
            span = min(hosts, max(1, math.ceil(size / NICS_PER_HOST_IN_VNET)))
            window = [(start + i) % hosts for i in range(span)]
            start = (start + span * 7 + 3) % hosts  # scatter the windows
            made.vnets.append(VNet(f"v{len(made.vnets)}", len(made.vnets), size, window))
            made.nics += size
    return made


def mac_of(vnet: int, n: int) -> str:
    """A unique, locally administered MAC per (VNet, NIC)."""
    return "02-" + "-".join(
        f"{b:02X}" for b in (vnet >> 8, vnet & 0xFF, 0, n >> 8 & 0xFF, n & 0xFF)
    )


def address_of(n: int) -> str:
    """The n-th customer address of a VNet (every VNet uses 172.16.0.0/12: their own)."""
    value = n + 2  # after the network address and the distributed router
    return f"172.{16 + value // 65536}.{value // 256 % 256}.{value % 256}"


def nic_resource(vnet: VNet, n: int, host: str) -> nb.Resource:
    config = nb.ip_configuration(address_of(n), vnet.name, VIRTUAL_SUBNET, name="ip")
    name = f"{vnet.name}-{n}"
    return nb.network_interface(name, [config], server_name=host, mac=mac_of(vnet.index, n))


def load_northbound(db: Path, made: Plan, remotes: Sequence[str]) -> float:
    """Write the plan into the store through the controller's service; the seconds it took."""
    started = time.perf_counter()
    service = ControllerService(SqliteStore(db))
    pool = nb.ip_pool("p", *PA_POOL)
    resources = [
        nb.provider_network([nb.pa_subnet(PA_SUBNET, PA_PREFIX, gateway=PA_GATEWAY, pools=[pool])])
    ]
    resources += [
        nb.server(f"h{i}", [remote], [(PA_NIC, PA_SUBNET)]) for i, remote in enumerate(remotes)
    ]
    for resource in resources:
        service.put(resource.path, resource.body)
    for vnet in made.vnets:
        subnet = nb.virtual_subnet(VIRTUAL_SUBNET, CA_SPACE, vsid=vnet.vsid)
        resource = nb.virtual_network(vnet.name, [CA_SPACE], [subnet])
        service.put(resource.path, resource.body)
        for n in range(vnet.size):
            nic = nic_resource(vnet, n, f"h{vnet.hosts[n % len(vnet.hosts)]}")
            service.put(nic.path, nic.body)
    service.close()
    return time.perf_counter() - started


# -- hosts -------------------------------------------------------------------------------


@dataclass
class Hosts:
    servers: list[OvsdbServer] = field(default_factory=list)
    agents: list[HostProcess] = field(default_factory=list)
    remotes: list[str] = field(default_factory=list)

    def stop(self) -> None:
        with ThreadPoolExecutor(START_WORKERS) as pool:
            list(pool.map(lambda s: s.stop(), self.servers))
        for agent in self.agents:
            agent.close()


def start_hosts(directory: Path, count: int, agents: int) -> Hosts:
    """``agents`` hnv hosts, then ovsdb-servers up to ``count``; RuntimeError if one fails."""
    made = Hosts()
    try:
        for i in range(agents):
            made.agents.append(HostProcess(directory / f"h{i}", name=f"h{i}").require_ready())
            made.remotes.append(made.agents[-1].remote)
        servers = [OvsdbServer(directory / f"h{i}") for i in range(agents, count)]
        with ThreadPoolExecutor(START_WORKERS) as pool:
            for server, error in zip(servers, pool.map(_start, servers), strict=True):
                if error is None:
                    made.servers.append(server)
                    made.remotes.append(server.unix_remote)
                else:
                    raise RuntimeError(f"ovsdb-server {len(made.servers) + agents}: {error}")
    except BaseException:
        made.stop()
        raise
    return made


def _start(server: OvsdbServer) -> str | None:
    try:
        server.start()
    except Exception as err:  # reported as the host count this machine refused
        return str(err)
    return None


# -- the controller ----------------------------------------------------------------------


class Controller:
    """``hnv controller`` on the store, as a subprocess."""

    def __init__(self, db: Path, log: Path) -> None:
        port = daemons.free_port()
        self.url = f"http://{daemons.LOOPBACK}:{port}"
        listen = f"{daemons.LOOPBACK}:{port}"
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                daemons.hnv_argv(
                    "controller", "--listen", listen, "--db", str(db), "--auth", "none"
                ),
                env=daemons.python_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )

    def southbound(self) -> dict[str, int] | None:
        try:
            answer = httpx.get(self.url + DIAGNOSTICS, timeout=10.0)
        except httpx.HTTPError:
            return None
        found: dict[str, int] | None = answer.json()["properties"].get("southbound")
        return found

    def wait_in_sync(
        self, hosts: int, timeout: float = SYNC_TIMEOUT, count: str = "inSync"
    ) -> dict[str, int]:
        """The southbound summary once ``count`` (inSync, verified) reaches ``hosts``."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the controller exited with {self.process.returncode}")
            found = self.southbound()
            if found is not None and found["hosts"] == hosts and found[count] == hosts:
                return found
            if time.monotonic() > deadline:
                raise RuntimeError(f"hosts not in sync after {timeout:g} s: {found}")
            time.sleep(0.2)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def kill(self, sig: int = signal.SIGKILL) -> None:
        stop_process(self.process, sig)


# -- one PUT, timed at every host that needs it -------------------------------------------


def wait_for_mac(mac: str) -> dict[str, Any]:
    """A ``wait`` operation that answers once the mapping row of ``mac`` exists."""
    return {
        "op": "wait",
        "timeout": int(TRIAL_TIMEOUT * 1000),
        "table": "Ucast_Macs_Remote",
        "where": [["MAC", "==", mac]],
        "columns": ["MAC"],
        "until": "==",
        "rows": [{"MAC": mac}],
    }


def trial_vnets(made: Plan, trials: int, agents: int) -> list[VNet]:
    """Networks of every size in turn; every other trial one that has an agent host."""
    by_size: dict[int, list[VNet]] = {}
    for vnet in made.vnets:
        by_size.setdefault(vnet.size, []).append(vnet)
    sizes = sorted(by_size)
    with_agent = [v for v in made.vnets if any(h < agents for h in v.hosts)]
    chosen: list[VNet] = []
    for t in range(trials):
        if t % 2 and with_agent:
            chosen.append(with_agent[t // 2 % len(with_agent)])
        else:
            group = by_size[sizes[t % len(sizes)]]
            chosen.append(group[t // len(sizes) % len(group)])
    return chosen


async def put_to_commit(
    controller: Controller, made: Plan, hosts: Hosts, trials: int, agents: int
) -> dict[str, Any]:
    commits: list[float] = []
    programmed: list[float] = []
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(base_url=controller.url + "/networking/v1", timeout=60) as http:
        for t, vnet in enumerate(trial_vnets(made, trials, agents)):
            n = vnet.size + t  # a new NIC of this network
            mac = mac_of(vnet.index, n).replace("-", ":").lower()
            connections = [await connect(hosts.remotes[h]) for h in vnet.hosts]
            done: list[float] = []
            waits = []
            for connection in connections:
                waiting = asyncio.ensure_future(
                    connection.call("transact", ["ms_vtep", wait_for_mac(mac)])
                )
                waiting.add_done_callback(_stamp(done))
                waits.append(waiting)
            await asyncio.sleep(0.05)  # the waits are at the hosts before the PUT
            agent_dirs = [hosts.agents[h].state_dir for h in vnet.hosts if h < len(hosts.agents)]
            started = time.perf_counter()
            host = f"h{vnet.hosts[n % len(vnet.hosts)]}"
            nic = nic_resource(vnet, n, host)
            answer = await http.put(nic.path, json=nic.body)
            if answer.status_code not in (200, 201):
                raise RuntimeError(f"PUT refused: {answer.status_code} {answer.text[:300]}")
            vfp = (
                loop.run_in_executor(None, _wait_vfp, agent_dirs, address_of(n), vnet.vsid)
                if agent_dirs
                else None
            )
            results = await asyncio.gather(*waits)
            for connection in connections:
                connection.close()
            if any(r and isinstance(r[0], dict) and r[0].get("error") for r in results):
                raise RuntimeError(f"trial {t}: a host never got the mapping: {results}")
            commits.append(max(done) - started)
            if vfp is not None:
                programmed.append(await vfp - started)
    figures: dict[str, Any] = {
        "put_to_commit_trials": len(commits),
        "put_to_commit_median_ms": round(statistics.median(commits) * 1000, 1),
        "put_to_commit_p99_ms": round(_quantile(commits, 0.99) * 1000, 1),
        "put_to_commit_max_ms": round(max(commits) * 1000, 1),
        "put_to_commit_median_target_ms": PUT_TARGET_MS,
    }
    if programmed:
        figures["put_to_vfp_trials"] = len(programmed)
        figures["put_to_vfp_median_ms"] = round(statistics.median(programmed) * 1000, 1)
    return figures


def _stamp(times: list[float]) -> Any:
    """A done-callback that records when it ran."""
    return lambda _: times.append(time.perf_counter())


def _wait_vfp(state_dirs: list[Path], ca: str, vsid: int) -> float:
    """When the last agent's VFP holds the mapping of ``ca`` (perf_counter)."""
    deadline = time.monotonic() + TRIAL_TIMEOUT
    for state_dir in state_dirs:
        with ControlClient(state_dir) as client:
            while not client.call("pa-ca-mapping", ca=ca, vsid=vsid):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{state_dir}: VFP never held {ca}")
                time.sleep(0.005)
    return time.perf_counter()


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- a whole run -------------------------------------------------------------------------


def run(hosts: int, nics: int, agents: int, trials: int, verify: bool = True) -> dict[str, Any]:
    """Everything at one size; the figures."""
    made = plan(hosts, nics)
    directory = Path(tempfile.mkdtemp(prefix="hnv-bench-scale-"))
    started = time.perf_counter()
    fleet = start_hosts(directory, hosts, min(agents, hosts))
    controller: Controller | None = None
    figures: dict[str, Any] = {}
    try:
        figures |= {
            "hosts": hosts,
            "agent_hosts": len(fleet.agents),
            "nics": made.nics,
            "vnets": len(made.vnets),
            "vnet_sizes": sorted({v.size for v in made.vnets}),
            "mapping_rows": made.mapping_rows,
            "hosts_start_seconds": round(time.perf_counter() - started, 1),
        }
        db = directory / "controller.db"
        _progress(figures)
        figures["nb_load_seconds"] = round(load_northbound(db, made, fleet.remotes), 1)
        _progress(figures)
        started = time.perf_counter()
        controller = Controller(db, directory / "controller.log")
        controller.wait_in_sync(hosts)
        figures["initial_sync_seconds"] = round(time.perf_counter() - started, 1)
        _progress(figures)
        controller.kill()
        started = time.perf_counter()
        controller = Controller(db, directory / "controller.log")
        synced = controller.wait_in_sync(hosts)
        figures["resync_seconds"] = round(time.perf_counter() - started, 1)
        figures["resync_target_seconds"] = RESYNC_TARGET_SECONDS
        figures["resync_transactions"] = synced["transactions"]
        figures["resync_hosts_read_in_full"] = synced["verified"]
        _progress(figures)
        if verify:  # the audits after a restart come within half an audit interval
            verified = controller.wait_in_sync(hosts, count="verified")
            figures["verified_seconds"] = round(time.perf_counter() - started, 1)
            figures["verified_transactions"] = verified["transactions"]
        rss = controller.rss_kb()
        figures["controller_rss_mb"] = round(rss / 1024, 1)
        figures["controller_rss_per_nic_kb"] = round(rss / made.nics, 2)
        figures["controller_rss_per_host_kb"] = round(rss / hosts, 1)
        _progress(figures)
        figures.update(
            asyncio.run(put_to_commit(controller, made, fleet, trials, len(fleet.agents)))
        )
        return figures
    except (RuntimeError, OSError) as err:  # the figures so far, and why the rest is missing
        log = directory / "controller.log"
        tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
        return figures | {"error": str(err)[:500], "controller_log_tail": tail}
    finally:
        if controller is not None:
            controller.kill(signal.SIGTERM)
        fleet.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _progress(figures: dict[str, Any]) -> None:
    print(f"bench: {json.dumps(figures)}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a run of a few seconds")
    parser.add_argument("--hosts", type=int, default=1000, help="hosts (default %(default)s)")
    parser.add_argument("--nics", type=int, help=f"NICs (default {NICS_PER_HOST} per host)")
    parser.add_argument("--agents", type=int, default=4, help="hnv host agents among the hosts")
    parser.add_argument("--trials", type=int, default=20, help="timed PUTs (default %(default)s)")
    parser.add_argument(
        "--trend", default="", help="smaller host counts to run first, e.g. 100,200"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        print(json.dumps(run(hosts=6, nics=120, agents=1, trials=4, verify=False)))
        return 0
    trend = []
    for count in [int(c) for c in args.trend.split(",") if c.strip()]:
        trend.append(run(count, count * NICS_PER_HOST, args.agents, max(5, args.trials // 2)))
        print(json.dumps(trend[-1]), file=sys.stderr, flush=True)
    try:
        figures = run(args.hosts, args.nics or args.hosts * NICS_PER_HOST, args.agents, args.trials)
    except RuntimeError as err:  # e.g. the machine holds fewer ovsdb-servers
        figures = {"hosts_refused": args.hosts, "reason": str(err)}
    figures["trend"] = trend
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
