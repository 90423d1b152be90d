"""Benchmark the controller cluster: failover time, and PUT/s on etcd next to SQLite.

Real processes throughout: a three-member etcd (``etcd-server``) on loopback, ``hnv
controller --store etcd://...`` replicas, and ``--hosts`` ovsdb-servers standing in for
hosts. Figures, in one run:

- ``failover_median_seconds`` (target 5 s): the leading replica killed (SIGKILL) -> another
  replica says it publishes and has every host connected and in sync (the diagnostics
  path); ``--failovers`` times (5), the killed replica started again in between;
- ``failover_host_transactions``: what the new leaders sent to hosts (0: a failover
  rewrites nothing that is right);
- ``puts_per_second``: ``--puts`` NIC PUTs from ``--clients`` concurrent clients to one
  controller on SQLite, to one replica on etcd, and spread over three replicas.

Prints one JSON object; ``--smoke`` is a short run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from openhnv.lab import documents as nb
from openhnv.lab.etcd import EtcdCluster
from openhnv.ovsdb.server import OvsdbServer
from openhnv.testing import datacenter as dc
from openhnv.testing.cluster import ReplicaProcess, leader_of

FAILOVER_TARGET_SECONDS = 5
VNET = "Blue"
VNET_PREFIX = "10.0.0.0/8"
VSID = 5001
REPLICAS = 3
SEED_NICS = 6
REQUEST_TIMEOUT = 60.0

Controller = ReplicaProcess  # a replica on etcd, or alone on SQLite


def put(url: str, resource: nb.Resource, client: httpx.Client) -> None:
    answer = client.put(url + nb_path(resource), json=resource.body, timeout=REQUEST_TIMEOUT)
    if answer.status_code not in (httpx.codes.OK, httpx.codes.CREATED):
        raise RuntimeError(f"PUT {resource.path}: {answer.status_code} {answer.text[:300]}")


def nb_path(resource: nb.Resource) -> str:
    return "/networking/v1" + resource.path


def datacenter(replica: Controller, remotes: Sequence[str]) -> None:
    """The PA network and MAC pool, a server per host (``h<i>``), one virtual network."""
    dc.fabric(replica)
    for i, remote in enumerate(remotes):
        dc.server(replica, f"h{i}", remote)
    dc.vnet(replica, VNET, VNET_PREFIX, VSID)


def nic(name: str, server: str) -> nb.Resource:
    """A NIC whose MAC and customer address the controller allocates."""
    config = nb.ip_configuration(None, VNET, dc.VIRTUAL_SUBNET)
    return nb.network_interface(name, [config], server_name=server)


def puts_per_second(
    urls: Sequence[str], prefix: str, count: int, clients: int, hosts: int
) -> float:
    """``count`` NIC PUTs from ``clients`` threads, round robin over ``urls``."""
    names = iter(range(count))
    lock = threading.Lock()
    errors: list[str] = []

    def work(index: int) -> None:
        with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
            while True:
                with lock:
                    n = next(names, None)
                if n is None:
                    return
                try:
                    put(urls[(n + index) % len(urls)], nic(f"{prefix}{n}", f"h{n % hosts}"), client)
                except (RuntimeError, httpx.HTTPError) as err:
                    errors.append(str(err))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} PUTs failed, first: {errors[0]}")
    return round(count / elapsed, 1)


def failovers(
    cluster: EtcdCluster, directory: Path, remotes: Sequence[str], times: int
) -> dict[str, Any]:
    log = directory / "replicas.log"
    replicas = [Controller(f"c{i}", ["--store", cluster.url], log) for i in range(REPLICAS)]
    measured: list[float] = []
    transactions: list[int] = []
    try:
        datacenter(replicas[0], remotes)
        for n in range(SEED_NICS):
            replicas[n % REPLICAS].put(nic(f"seed{n}", f"h{n % len(remotes)}"))
        for trial in range(times):
            current = _wait_in_sync(replicas, len(remotes), "a leader in sync")
            _wait_succeeded(current)  # everything published: a failover has nothing to do
            killed_at = time.perf_counter()
            current.kill()
            others = [r for r in replicas if r is not current]
            successor = _wait_in_sync(others, len(remotes), "another leader in sync")
            measured.append(time.perf_counter() - killed_at)
            state = successor.diagnostics() or {}
            transactions.append(int(state.get("southbound", {}).get("transactions", -1)))
            index = replicas.index(current)
            replicas[index] = Controller(f"c{index}-{trial}", ["--store", cluster.url], log)
    finally:
        for replica in replicas:
            replica.kill(signal.SIGTERM)
    return {
        "failovers": len(measured),
        "failover_seconds": [round(m, 2) for m in measured],
        "failover_median_seconds": round(statistics.median(measured), 2),
        "failover_target_seconds": FAILOVER_TARGET_SECONDS,
        "failover_host_transactions": transactions,
    }


def _in_sync(replicas: Sequence[Controller], hosts: int) -> Controller | None:
    found = leader_of(replicas)
    if found is None:
        return None
    state = found.diagnostics() or {}
    southbound = state.get("southbound", {})
    return found if southbound.get("inSync") == hosts == southbound.get("hosts") else None


def _wait_succeeded(replica: Controller, timeout: float = 120.0) -> None:
    """Until every NIC reads Succeeded (its rows are committed at every host that needs them)."""
    deadline = time.monotonic() + timeout
    while True:
        value = httpx.get(replica.base + "/networkInterfaces", timeout=30).json()
        if all(n["properties"]["provisioningState"] == "Succeeded" for n in value["value"]):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"NICs not all Succeeded within {timeout:g} s")
        time.sleep(0.05)


def _wait_in_sync(
    replicas: Sequence[Controller], hosts: int, what: str, timeout: float = 120.0
) -> Controller:
    deadline = time.monotonic() + timeout
    while True:
        found = _in_sync(replicas, hosts)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} within {timeout:g} s")
        time.sleep(0.02)


def throughput(
    cluster: EtcdCluster, directory: Path, remotes: Sequence[str], puts: int, clients: int
) -> dict[str, Any]:
    log = directory / "throughput.log"
    figures: dict[str, Any] = {"puts": puts, "clients": clients}
    sqlite = Controller("sqlite", ["--db", str(directory / "controller.db")], log)
    try:
        datacenter(sqlite, remotes)
        figures["puts_per_second_sqlite"] = puts_per_second(
            [sqlite.url], "s", puts, clients, len(remotes)
        )
    finally:
        sqlite.kill(signal.SIGTERM)
    for count, root in ((1, "/one"), (3, "/three")):
        replicas = [
            Controller(f"t{count}-{i}", ["--store", cluster.url, "--etcd-root", root], log)
            for i in range(count)
        ]
        try:
            datacenter(replicas[0], remotes)
            rate = puts_per_second([r.url for r in replicas], "e", puts, clients, len(remotes))
            figures[f"puts_per_second_etcd_{count}_replica{'s' if count > 1 else ''}"] = rate
        finally:
            for replica in replicas:
                replica.kill(signal.SIGTERM)
    return figures


def run(hosts: int, times: int, puts: int, clients: int) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="hnv-bench-ha-"))
    servers = [OvsdbServer(directory / f"h{i}") for i in range(hosts)]
    cluster = EtcdCluster(directory / "etcd", 3)
    try:
        for server in servers:
            server.start()
        cluster.start()
        remotes = [s.unix_remote for s in servers]
        figures: dict[str, Any] = {"hosts": hosts, "etcd_members": 3, "replicas": 3}
        figures.update(failovers(cluster, directory, remotes, times))
        figures.update(throughput(cluster, directory, remotes, puts, clients))
        return figures
    finally:
        cluster.stop()
        for server in servers:
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a short run")
    parser.add_argument("--hosts", type=int, default=5, help="hosts (default %(default)s)")
    parser.add_argument(
        "--failovers", type=int, default=5, help="leader kills (default %(default)s)"
    )
    parser.add_argument(
        "--puts", type=int, default=600, help="NIC PUTs per store (default %(default)s)"
    )
    parser.add_argument(
        "--clients", type=int, default=6, help="concurrent clients (default %(default)s)"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        print(json.dumps(run(hosts=2, times=1, puts=30, clients=3)))
    else:
        print(json.dumps(run(args.hosts, args.failovers, args.puts, args.clients)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
