"""Benchmark southbound convergence: a REST PUT -> the mapping programmed in every host's VFP.

Starts ``--hosts`` real ``hnv host --driver none`` processes (default; their agents
program VFP from the rows), or with ``--host-kind ovsdb-server`` bare ovsdb-servers
standing in for hosts, and ``hnv controller`` as a subprocess, declares the hosts as
servers whose management address is their socket, and watches every host with its own
OVSDB client (the observer), which timestamps each ``Ucast_Macs_Remote`` row as it
appears; with real hosts it also asks each host's control socket (``pa-ca-mapping``)
when its VFP holds the mapping.

- ``put_to_commit`` / ``put_to_vfp``: one VNet with a NIC on every host; then
  ``--trials`` times, PUT one new NIC (round robin over the hosts) and time from just
  before the PUT until its CA->PA mapping row is committed at every host, and until
  every host's VFP holds it (every host needs it). Median and p99; targets 200 ms and 1 s.
- ``bring_up``: PUT ``--nics`` NICs, one after another, into a fresh VNet spread over
  the hosts; time from the first PUT until every host holds every mapping (rows, then
  VFP) and every NIC reads ``Succeeded``. Target 30 s for 1,000 NICs.

Prints one JSON object. ``--smoke`` does a tiny run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from openhnv.host import control
from openhnv.host.control import ControlClient
from openhnv.lab.documents import Resource
from openhnv.ovsdb.client import OvsdbClient
from openhnv.ovsdb.mirror import RowEvent
from openhnv.ovsdb.server import OvsdbServer
from openhnv.testing import datacenter as dc
from openhnv.testing.processes import ControllerProcess, HostProcess, cpu_seconds

STARTUP_TIMEOUT = 30.0
TRIAL_TIMEOUT = 10.0
BULK_TIMEOUT = 600.0
SUCCEEDED_POLL = 0.05


class _Client:
    """A kept-alive HTTP/1.1 connection to the controller."""

    def __init__(self, base: str) -> None:
        url = urlsplit(base)
        self.prefix = url.path
        self.connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)

    def request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            self.connection.request(method, self.prefix + path, body=data, headers=headers)
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # The server closes a keep-alive connection left idle longer than its timeout
            # (uvicorn: 5 s) while the bench waits for hosts: open a new one, once.
            self.connection.close()
            self.connection.request(method, self.prefix + path, body=data, headers=headers)
            response = self.connection.getresponse()
        text = response.read()
        if response.status not in (200, 201):
            raise SystemExit(f"bench: {method} {path}: {response.status} {text[:300]!r}")
        doc: dict[str, Any] = json.loads(text)
        return doc

    def put(self, resource: Resource) -> dict[str, Any]:
        return self.request("PUT", resource.path, resource.body)

    def close(self) -> None:
        self.connection.close()


class Observer:
    """Timestamps every Ucast_Macs_Remote row appearing at each host."""

    def __init__(self, remotes: dict[str, str]) -> None:
        self.cond = threading.Condition()
        self.seen: dict[str, dict[str, float]] = {name: {} for name in remotes}
        self.clients = [
            OvsdbClient(remote, databases=("ms_vtep",), on_change=self._handler(name)).start()
            for name, remote in remotes.items()
        ]
        for client in self.clients:
            client.wait_synced(STARTUP_TIMEOUT)

    def _handler(self, name: str) -> Any:
        def on_change(event: RowEvent) -> None:
            if event.table == "Ucast_Macs_Remote" and event.old is None and event.key:
                now = time.perf_counter()
                with self.cond:
                    self.seen[name].setdefault(event.key, now)
                    self.cond.notify_all()

        return on_change

    def wait_everywhere(self, keys: set[str], timeout: float) -> float | None:
        """The time the last of ``keys`` reached the last host (None on timeout)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                missing = [n for n, seen in self.seen.items() if not keys <= seen.keys()]
                if not missing:
                    return max(seen[k] for seen in self.seen.values() for k in keys)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def close(self) -> None:
        for client in self.clients:
            client.close()


class VfpProbe:
    """Asks each ``hnv host`` (its control socket) whether its VFP holds a mapping yet."""

    def __init__(self, state_dirs: dict[str, Path]) -> None:
        self.clients = {name: ControlClient(d) for name, d in state_dirs.items()}

    def wait_programmed(self, timeout: float, **where: Any) -> float | None:
        """The time the last host's VFP held ``count`` mappings matching ``where``."""
        count = where.pop("count", 1)
        waiting = set(self.clients)
        last = 0.0
        deadline = time.monotonic() + timeout
        while waiting:
            for name in sorted(waiting):
                if len(self.clients[name].call("pa-ca-mapping", **where)) >= count:
                    last = time.perf_counter()
                    waiting.discard(name)
            if waiting:
                if time.monotonic() > deadline:
                    return None
                time.sleep(0.002 if count == 1 else 0.05)
        return last

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def _mapping_key(vsid: int, nic: dict[str, Any]) -> str:
    mac = nic["properties"]["privateMacAddress"].replace("-", "").lower()
    pretty = ":".join(mac[i : i + 2] for i in range(0, 12, 2))
    ip = nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"]
    return f"{vsid}/{pretty}/{ip}"


def _fabric(client: _Client, remotes: dict[str, str]) -> None:
    dc.fabric(client)
    for name, remote in remotes.items():
        dc.server(client, name, remote)


def _ip(base: str, i: int) -> str:
    return f"{base}.{1 + (i + 10) // 250}.{(i + 10) % 250 + 2}"


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def put_to_commit(
    client: _Client, observer: Observer, hosts: list[str], trials: int, probe: VfpProbe | None
) -> dict[str, Any]:
    dc.vnet(client, "Probe", "10.7.0.0/16", 7001)
    seeds = set()
    for i, host in enumerate(hosts):
        doc = dc.nic(client, f"seed{i}", "Probe", _ip("10.7", i), host)
        seeds.add(_mapping_key(7001, doc))
    if observer.wait_everywhere(seeds, 60.0) is None:
        raise SystemExit("bench: the seed NICs never reached every host")
    latencies: list[float] = []
    programmed: list[float] = []
    for t in range(trials):
        host = hosts[t % len(hosts)]
        resource = dc.nic_resource(f"trial{t}", "Probe", _ip("10.7", len(hosts) + t), host)
        start = time.perf_counter()
        doc = client.put(resource)
        done = observer.wait_everywhere({_mapping_key(7001, doc)}, TRIAL_TIMEOUT)
        if done is None:
            raise SystemExit(f"bench: trial {t} did not reach every host in {TRIAL_TIMEOUT} s")
        latencies.append(done - start)
        if probe is not None:
            ip = doc["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"]
            in_vfp = probe.wait_programmed(TRIAL_TIMEOUT, ca=ip, vsid=7001)
            if in_vfp is None:
                raise SystemExit(f"bench: trial {t} was not programmed in every host's VFP")
            programmed.append(in_vfp - start)
    figures: dict[str, Any] = {}
    if programmed:
        figures = {
            "put_to_vfp_median_ms": round(statistics.median(programmed) * 1000, 1),
            "put_to_vfp_p99_ms": round(_quantile(programmed, 0.99) * 1000, 1),
            "put_to_vfp_max_ms": round(max(programmed) * 1000, 1),
        }
    return figures | {
        "put_to_commit_trials": trials,
        "put_to_commit_hosts": len(hosts),
        "put_to_commit_median_ms": round(statistics.median(latencies) * 1000, 1),
        "put_to_commit_p99_ms": round(_quantile(latencies, 0.99) * 1000, 1),
        "put_to_commit_max_ms": round(max(latencies) * 1000, 1),
        "put_to_commit_median_target_ms": 200,
        "put_to_commit_p99_target_ms": 1000,
    }


def bring_up(
    client: _Client, observer: Observer, hosts: list[str], nics: int, probe: VfpProbe | None
) -> dict[str, Any]:
    dc.vnet(client, "Bulk", "10.8.0.0/16", 8001)
    resources = [
        dc.nic_resource(f"bulk{i}", "Bulk", _ip("10.8", i), hosts[i % len(hosts)])
        for i in range(nics)
    ]
    keys: set[str] = set()
    start = time.perf_counter()
    for resource in resources:
        keys.add(_mapping_key(8001, client.put(resource)))
    put_done = time.perf_counter()
    if observer.wait_everywhere(keys, BULK_TIMEOUT) is None:
        raise SystemExit("bench: the bulk NICs never reached every host")
    rows_done = time.perf_counter()
    in_vfp = (
        probe.wait_programmed(BULK_TIMEOUT, vsid=8001, count=nics) if probe is not None else None
    )
    if probe is not None and in_vfp is None:
        raise SystemExit("bench: the bulk NICs were never all programmed in every host's VFP")
    while True:
        value = client.request("GET", "/networkInterfaces")["value"]
        bulk = [n for n in value if n["resourceId"].startswith("bulk")]
        if all(n["properties"]["provisioningState"] == "Succeeded" for n in bulk):
            break
        if time.perf_counter() - start > BULK_TIMEOUT:
            raise SystemExit("bench: the bulk NICs never all read Succeeded")
        time.sleep(SUCCEEDED_POLL)
    succeeded = time.perf_counter()
    vfp = {"bring_up_vfp_seconds": round(in_vfp - start, 2)} if in_vfp is not None else {}
    return vfp | {
        "bring_up_nics": nics,
        "bring_up_hosts": len(hosts),
        "bring_up_put_seconds": round(put_done - start, 2),
        "bring_up_rows_seconds": round(rows_done - start, 2),
        "bring_up_succeeded_seconds": round(succeeded - start, 2),
        "bring_up_target_seconds": 30,
    }


def _hosts_cpu_seconds(hosts: list[HostProcess]) -> float:
    """CPU seconds of the ``hnv host`` processes (agent, switch; not their ovsdb-servers)."""
    return sum(cpu_seconds(h.pid) for h in hosts)


def _agent_syncs(hosts: list[HostProcess]) -> dict[str, int]:
    """The agents' syncs since they started, summed: full plans and patched batches."""
    totals = {"hosts_full_syncs": 0, "hosts_incremental_syncs": 0}
    for host in hosts:
        counters = control.call(host.state_dir, "status")["agent"]["counters"]
        totals["hosts_full_syncs"] += counters.get("full_syncs", 0)
        totals["hosts_incremental_syncs"] += counters.get("incremental_syncs", 0)
    return totals


@dataclass
class StandIns:
    """What stands in for the hosts: ``hnv host`` processes, or bare ovsdb-servers."""

    remotes: dict[str, str] = field(default_factory=dict)
    processes: list[HostProcess] = field(default_factory=list)


def _start_stand_ins(stack: ExitStack, root: Path, count: int, kind: str) -> StandIns:
    """``count`` hosts of ``kind`` under ``root``, each stopped when ``stack`` closes."""
    made = StandIns()
    for i in range(count):
        name = f"host{i + 1}"
        if kind == "hnv-host":
            host = HostProcess(root / name, name=name, timeout=STARTUP_TIMEOUT)
            stack.callback(host.close)
            if not host.ready:
                raise SystemExit(f"bench: hnv host {name} did not start: {host.stderr()}")
            made.processes.append(host)
            made.remotes[name] = host.remote
        else:
            server = OvsdbServer(root / name)
            stack.callback(server.stop)
            server.start()
            made.remotes[name] = server.unix_remote
    return made


def _bring_up_with_cpu(
    client: _Client,
    observer: Observer,
    stand_ins: StandIns,
    nics: int,
    probe: VfpProbe | None,
    controller: ControllerProcess,
) -> dict[str, Any]:
    """``bring_up``, with the CPU seconds the controller, this process and the hosts spent."""
    hosts = stand_ins.processes
    cpu_before = cpu_seconds(controller.pid), time.process_time()
    hosts_before = _hosts_cpu_seconds(hosts)
    figures = bring_up(client, observer, list(stand_ins.remotes), nics, probe)
    figures["bring_up_controller_cpu_seconds"] = round(
        cpu_seconds(controller.pid) - cpu_before[0], 2
    )
    figures["bring_up_bench_cpu_seconds"] = round(time.process_time() - cpu_before[1], 2)
    if hosts:
        figures["bring_up_hosts_cpu_seconds"] = round(_hosts_cpu_seconds(hosts) - hosts_before, 2)
        figures.update(_agent_syncs(hosts))
    return figures


def run(hosts: int, trials: int, nics: int, kind: str = "ovsdb-server") -> dict[str, Any]:
    with ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="hnv-bench-conv-"))
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        stand_ins = _start_stand_ins(stack, tmp, hosts, kind)
        observer = Observer(stand_ins.remotes)
        stack.callback(observer.close)
        probe: VfpProbe | None = None
        if stand_ins.processes:
            probe = VfpProbe({h.name: h.state_dir for h in stand_ins.processes})
            stack.callback(probe.close)
        controller = stack.enter_context(ControllerProcess(tmp / "controller.db"))
        print(f"bench: controller pid {controller.pid}", file=sys.stderr, flush=True)
        client = _Client(controller.base)
        stack.callback(client.close)
        _fabric(client, stand_ins.remotes)
        figures: dict[str, Any] = {"hosts_kind": kind}
        figures.update(put_to_commit(client, observer, list(stand_ins.remotes), trials, probe))
        figures.update(_bring_up_with_cpu(client, observer, stand_ins, nics, probe, controller))
        return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny run for make test")
    parser.add_argument("--hosts", type=int, default=10, help="hosts (default %(default)s)")
    parser.add_argument("--trials", type=int, default=100, help="PUT trials (default %(default)s)")
    parser.add_argument(
        "--nics", type=int, default=1000, help="bring-up NICs (default %(default)s)"
    )
    parser.add_argument(
        "--host-kind",
        choices=("ovsdb-server", "hnv-host"),
        default="hnv-host",
        help="what stands in for a host (default %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        figures = run(hosts=3, trials=5, nics=20, kind=args.host_kind)
    else:
        figures = run(args.hosts, args.trials, args.nics, args.host_kind)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
