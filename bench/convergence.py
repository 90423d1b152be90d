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
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))

from openhnv.host import control  # noqa: E402
from openhnv.host.control import ControlClient  # noqa: E402
from openhnv.ovsdb.client import OvsdbClient  # noqa: E402
from openhnv.ovsdb.mirror import RowEvent  # noqa: E402
from openhnv.ovsdb.server import OvsdbServer  # noqa: E402

STARTUP_TIMEOUT = 30.0
HOST_COMMAND = (sys.executable, "-m", "openhnv", "host")
TRIAL_TIMEOUT = 10.0
PA_SUBNET = "/logicalNetworks/HNVPA/subnets/pa"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Client:
    """A kept-alive HTTP/1.1 connection to the controller."""

    def __init__(self, base: str) -> None:
        url = urlsplit(base)
        self.prefix = url.path
        self.connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)

    def request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        self.connection.request(method, self.prefix + path, body=data, headers=headers)
        response = self.connection.getresponse()
        text = response.read()
        if response.status not in (200, 201):
            raise SystemExit(f"bench: {method} {path}: {response.status} {text[:300]!r}")
        doc: dict[str, Any] = json.loads(text)
        return doc

    def put(self, ref: str, properties: dict[str, Any]) -> dict[str, Any]:
        return self.request(
            "PUT", ref, {"resourceId": ref.rsplit("/", 1)[1], "properties": properties}
        )

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


def _nic_body(vnet: str, ip: str, server: str) -> dict[str, Any]:
    return {
        "server": {"resourceRef": f"/servers/{server}"},
        "ipConfigurations": [
            {
                "resourceId": "ipconfig1",
                "properties": {
                    "privateIPAddress": ip,
                    "subnet": {"resourceRef": f"/virtualNetworks/{vnet}/subnets/s1"},
                },
            }
        ],
    }


def _vnet(client: _Client, name: str, prefix: str, vsid: int) -> None:
    client.put(
        f"/virtualNetworks/{name}",
        {
            "addressSpace": {"addressPrefixes": [prefix]},
            "logicalNetwork": {"resourceRef": "/logicalNetworks/HNVPA"},
            "subnets": [
                {
                    "resourceId": "s1",
                    "properties": {"addressPrefix": prefix, "virtualSubnetId": vsid},
                }
            ],
        },
    )


def _fabric(client: _Client, remotes: dict[str, str]) -> None:
    pool = {"startIpAddress": "192.168.1.1", "endIpAddress": "192.168.200.250"}
    client.put(
        "/logicalNetworks/HNVPA",
        {
            "networkVirtualizationEnabled": "True",
            "subnets": [
                {
                    "resourceId": "pa",
                    "properties": {
                        "addressPrefix": "192.168.0.0/16",
                        "defaultGateways": ["192.168.0.1"],
                        "ipPools": [{"resourceId": "pool", "properties": pool}],
                    },
                }
            ],
        },
    )
    client.put(
        "/macPools/default",
        {"startMacAddress": "00-1D-D8-07-00-00", "endMacAddress": "00-1D-D8-07-FF-FF"},
    )
    for name, remote in remotes.items():
        client.put(
            f"/servers/{name}",
            {
                "connections": [{"managementAddresses": [remote]}],
                "networkInterfaces": [
                    {
                        "resourceId": "pnic1",
                        "properties": {"logicalSubnets": [{"resourceRef": PA_SUBNET}]},
                    }
                ],
            },
        )


def _ip(base: str, i: int) -> str:
    return f"{base}.{1 + (i + 10) // 250}.{(i + 10) % 250 + 2}"


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def put_to_commit(
    client: _Client, observer: Observer, hosts: list[str], trials: int, probe: VfpProbe | None
) -> dict[str, Any]:
    _vnet(client, "Probe", "10.7.0.0/16", 7001)
    seeds = set()
    for i, host in enumerate(hosts):
        doc = client.put(f"/networkInterfaces/seed{i}", _nic_body("Probe", _ip("10.7", i), host))
        seeds.add(_mapping_key(7001, doc))
    if observer.wait_everywhere(seeds, 60.0) is None:
        raise SystemExit("bench: the seed NICs never reached every host")
    latencies: list[float] = []
    programmed: list[float] = []
    for t in range(trials):
        host = hosts[t % len(hosts)]
        body = _nic_body("Probe", _ip("10.7", len(hosts) + t), host)
        start = time.perf_counter()
        doc = client.put(f"/networkInterfaces/trial{t}", body)
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
    _vnet(client, "Bulk", "10.8.0.0/16", 8001)
    keys: set[str] = set()
    start = time.perf_counter()
    for i in range(nics):
        doc = client.put(
            f"/networkInterfaces/bulk{i}", _nic_body("Bulk", _ip("10.8", i), hosts[i % len(hosts)])
        )
        keys.add(_mapping_key(8001, doc))
    put_done = time.perf_counter()
    if observer.wait_everywhere(keys, 600.0) is None:
        raise SystemExit("bench: the bulk NICs never reached every host")
    rows_done = time.perf_counter()
    in_vfp = probe.wait_programmed(600.0, vsid=8001, count=nics) if probe is not None else None
    if probe is not None and in_vfp is None:
        raise SystemExit("bench: the bulk NICs were never all programmed in every host's VFP")
    while True:
        value = client.request("GET", "/networkInterfaces")["value"]
        bulk = [n for n in value if n["resourceId"].startswith("bulk")]
        if all(n["properties"]["provisioningState"] == "Succeeded" for n in bulk):
            break
        if time.perf_counter() - start > 600:
            raise SystemExit("bench: the bulk NICs never all read Succeeded")
        time.sleep(0.05)
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


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _hosts_cpu_seconds(hosts: list[_HostProcess]) -> float:
    """CPU seconds of the ``hnv host`` processes (agent, switch; not their ovsdb-servers)."""
    return sum(_cpu_seconds(h.process.pid) for h in hosts)


def _agent_syncs(hosts: list[_HostProcess]) -> dict[str, int]:
    """The agents' syncs since they started, summed: full plans and patched batches."""
    totals = {"hosts_full_syncs": 0, "hosts_incremental_syncs": 0}
    for host in hosts:
        counters = control.call(host.state_dir, "status")["agent"]["counters"]
        totals["hosts_full_syncs"] += counters.get("full_syncs", 0)
        totals["hosts_incremental_syncs"] += counters.get("incremental_syncs", 0)
    return totals


def _start_controller(db: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "openhnv", "controller", "--listen", f"127.0.0.1:{port}"]
    process = subprocess.Popen(
        [*cmd, "--db", str(db)],
        env=dict(os.environ, PYTHONPATH=str(SRC)),
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/networking/v1"
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return process, base
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit("bench: the controller did not start") from None
            time.sleep(0.1)


class _HostProcess:
    """``hnv host --driver none`` in ``state_dir``."""

    def __init__(self, name: str, state_dir: Path) -> None:
        self.remote = f"unix:{state_dir}/ovsdb.sock"
        self.state_dir = state_dir
        self.process = subprocess.Popen(
            [*HOST_COMMAND, "--name", name, "--state-dir", str(state_dir), "--driver", "none"],
            env=dict(os.environ, PYTHONPATH=str(SRC)),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            self.stop()
            raise SystemExit(f"bench: hnv host {name} did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def run(hosts: int, trials: int, nics: int, kind: str = "ovsdb-server") -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="hnv-bench-conv-"))
    servers: dict[str, OvsdbServer] = {}
    host_processes: list[_HostProcess] = []
    process: subprocess.Popen[bytes] | None = None
    observer: Observer | None = None
    probe: VfpProbe | None = None
    client: _Client | None = None
    try:
        remotes: dict[str, str] = {}
        for i in range(hosts):
            name = f"host{i + 1}"
            if kind == "hnv-host":
                host_processes.append(_HostProcess(name, tmp / name))
                remotes[name] = host_processes[-1].remote
            else:
                servers[name] = OvsdbServer(tmp / name)
                servers[name].start()
                remotes[name] = servers[name].unix_remote
        observer = Observer(remotes)
        if kind == "hnv-host":
            probe = VfpProbe({f"host{i + 1}": tmp / f"host{i + 1}" for i in range(hosts)})
        process, base = _start_controller(tmp / "controller.db")
        print(f"bench: controller pid {process.pid}", file=sys.stderr, flush=True)
        client = _Client(base)
        _fabric(client, remotes)
        figures: dict[str, Any] = {"hosts_kind": kind}
        figures.update(put_to_commit(client, observer, list(remotes), trials, probe))
        cpu_before = _cpu_seconds(process.pid), time.process_time()
        hosts_before = _hosts_cpu_seconds(host_processes)
        figures.update(bring_up(client, observer, list(remotes), nics, probe))
        figures["bring_up_controller_cpu_seconds"] = round(
            _cpu_seconds(process.pid) - cpu_before[0], 2
        )
        figures["bring_up_bench_cpu_seconds"] = round(time.process_time() - cpu_before[1], 2)
        if host_processes:
            figures["bring_up_hosts_cpu_seconds"] = round(
                _hosts_cpu_seconds(host_processes) - hosts_before, 2
            )
            figures.update(_agent_syncs(host_processes))
        return figures
    finally:
        if client is not None:
            client.close()
        if observer is not None:
            observer.close()
        if probe is not None:
            probe.close()
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        for server in servers.values():
            server.stop()
        for host in host_processes:
            host.stop()
        shutil.rmtree(tmp, ignore_errors=True)


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
