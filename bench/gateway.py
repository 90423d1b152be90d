"""Through the gateway: TCP throughput and new connections/s via outbound NAT and via L3
forwarding, next to a plain VM-to-VM flow in the same run, and PUT-to-first-packet.

Brings examples/gateways.yaml up, then from Fabrikam's VM 10.1.1.11 (host1) measures,
each against a sink/echo server of the bench: to its VM 10.1.1.12 (host2: VM to VM),
to the Internet server 203.0.113.1 (through Fabrikam's compartment on gw1, NAT), and to
the physical server 172.16.20.10 (the compartment's VLAN 20 leg, L3). The PA subnets are
made untagged (the lab relays PA VLANs in userspace: VM-to-VM would measure that relay);
VLAN 20 stays, so L3 crosses the compartment's and the physical network's VLAN relays,
as it does in the lab. Ratios are each path over VM-to-VM.

Throughput is iperf3's, counted by the receiver; new connections per second come from a
client process of their own against an echo server process (so the bench's interpreter
is not part of the path). ``--repeat`` rounds measure every path, in an order rotated
per round, after a warm-up; figures are medians. Then Fabrikam's virtual gateway is
deleted and PUT again (as often): the time from the PUT to the first TCP connection
through NAT. Prints JSON; needs root. ``--smoke`` does one short round.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openhnv.lab import netns, orchestrator
from openhnv.lab.edge_builder import EdgeNames
from openhnv.lab.edge_resources import tenant_gateways
from openhnv.lab.rest import ControllerClient
from openhnv.lab.topology import load
from openhnv.testing.privileges import root_missing

GATEWAYS = Path(__file__).resolve().parents[1] / "examples" / "gateways.yaml"
ECHO_PORT = 5001
IPERF_PORT = 5201
IPERF_ATTEMPTS = 50
ROUNDS = 3
CLIENT_VM = "fabrikam-vm1"
VGW = "Fabrikam-gw"
FIRST_PACKET_TIMEOUT = 60.0
ATTEMPT_SECONDS = 0.2  # iperf3's retry pause
CONNECT_SECONDS = 0.05  # one connect attempt through a path being built: the resolution


# The connection-rate client and server run as processes of their own (not threads of
# the bench), so the bench's own interpreter lock does not throttle the path measured.
ECHO_SERVER = """
import socket, sys
server = socket.create_server((sys.argv[1], int(sys.argv[2])), backlog=128)
print("ready", flush=True)
while True:
    conn, _ = server.accept()
    with conn:
        if conn.recv(1):
            conn.sendall(b"x")
"""
RATE_CLIENT = """
import socket, sys, time
address, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
count, start = 0, time.perf_counter()
while time.perf_counter() - start < seconds:
    with socket.create_connection((address, port), timeout=5.0) as sock:
        sock.sendall(b"x")
        sock.recv(1)
    count += 1
print(count / (time.perf_counter() - start))
"""


def _in_namespace(namespace: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", namespace, *argv]


def _echo_server(namespace: str, address: str) -> subprocess.Popen[str]:
    """The connection-rate server in ``namespace``, once it listens."""
    argv = _in_namespace(namespace, [sys.executable, "-c", ECHO_SERVER, address, str(ECHO_PORT)])
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    if server.stdout is None or server.stdout.readline().strip() != "ready":
        server.kill()
        raise RuntimeError(f"the echo server in {namespace} did not start")
    return server


def _throughput(namespace: str, address: str, target: str, seconds: float) -> float:
    """Mbit/s one iperf3 TCP stream delivered (the receiver's count) in ``seconds``."""
    server = subprocess.Popen(
        _in_namespace(target, ["iperf3", "-s", "-1", "-B", address, "-p", str(IPERF_PORT)]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        argv = ["iperf3", "-c", address, "-p", str(IPERF_PORT), "-J", "-t", str(seconds)]
        report: dict[str, Any] = {}
        for _ in range(IPERF_ATTEMPTS):
            done = netns.exec_in(namespace, argv, check=False, timeout=seconds + 30)
            report = json.loads(done.stdout or "{}")
            if "error" not in report:
                break
            time.sleep(ATTEMPT_SECONDS)  # the server is not listening yet
        if "error" in report:
            raise RuntimeError(f"iperf3 to {address}: {report['error']}")
        return float(report["end"]["sum_received"]["bits_per_second"]) / 1e6
    finally:
        if server.poll() is None:
            server.terminate()
        server.wait(10)


def _connections(namespace: str, address: str, seconds: float) -> float:
    """New TCP connections (connect, one byte each way, close) per second."""
    argv = [sys.executable, "-c", RATE_CLIENT, address, str(ECHO_PORT), str(seconds)]
    done = netns.exec_in(namespace, argv, timeout=seconds + 30)
    return float(done.stdout.strip())


def _connects(namespace: str, address: str) -> bool:
    sock = netns.run_in(namespace, socket.socket, socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.settimeout(CONNECT_SECONDS)
        try:
            sock.connect((address, ECHO_PORT))
        except OSError:
            return False
    return True


def _until(fn: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        if time.monotonic() > deadline:
            raise RuntimeError("not within the timeout")
        time.sleep(CONNECT_SECONDS / 5)


def _put_to_first_packet(running: orchestrator.RunningLab, internet: str) -> float:
    """Seconds from PUT virtualGateways (after a DELETE) to a connection through NAT."""
    client = ControllerClient.connect(running.controller_url, access=running.access)
    compartments = EdgeNames(running.name).compartments("gw1") + VGW.lower()
    try:
        client.delete(f"/virtualGateways/{VGW}")
        _until(lambda: compartments not in netns.list_namespaces(), FIRST_PACKET_TIMEOUT)
        edge = running.edge
        resource = next(
            r
            for r in tenant_gateways(running.topology, edge.secrets, edge.public_addresses)
            if r.collection == "virtualGateways" and r.resource_id == VGW
        )
        start = time.perf_counter()
        client.put(resource)
        vm = running.vm_namespace(CLIENT_VM)
        _until(lambda: _connects(vm, internet), FIRST_PACKET_TIMEOUT)
        return time.perf_counter() - start
    finally:
        client.close()


def _round(
    client: str, paths: dict[str, tuple[str, str]], order: list[str], seconds: float
) -> dict[str, dict[str, float]]:
    """Each path once, in ``order``: TCP throughput, then new connections per second."""
    found: dict[str, dict[str, float]] = {}
    for path in order:
        target, address = paths[path]
        found[path] = {
            "tcp_mbit_s": _throughput(client, address, target, seconds),
            "new_connections_per_s": _connections(client, address, seconds),
        }
    return found


def _median(rounds: list[dict[str, dict[str, float]]], path: str, key: str) -> float:
    return statistics.median(r[path][key] for r in rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one short round")
    parser.add_argument("--seconds", type=float, default=5.0, help="per measure")
    parser.add_argument("--repeat", type=int, default=ROUNDS, help="rounds (medians)")
    args = parser.parse_args()
    missing = root_missing()
    if missing is not None:
        print(json.dumps({"skipped": missing}))
        return 0
    seconds, repeat = (1.0, 1) if args.smoke else (args.seconds, args.repeat)
    example = load(GATEWAYS)
    # Untagged PA subnets: the example tags rack2 (host2) with a VLAN, which the lab relays
    # in userspace; the VM-to-VM baseline would measure that relay, not the hosts' path.
    untagged = tuple(dataclasses.replace(p, vlan=0) for p in example.pa_subnets)
    topology = dataclasses.replace(example, name=f"b{secrets.token_hex(3)}", pa_subnets=untagged)
    names = EdgeNames(topology.name)
    running = orchestrator.up(topology)
    paths = {
        "vm_to_vm": (running.vm_namespace("fabrikam-vm2"), "10.1.1.12"),
        "nat": (names.network("Internet"), "203.0.113.1"),
        "l3": (names.physical("fabsrv"), "172.16.20.10"),
    }
    servers: list[subprocess.Popen[str]] = []
    rounds: list[dict[str, dict[str, float]]] = []
    first_packets: list[float] = []
    try:
        servers += [_echo_server(namespace, address) for namespace, address in paths.values()]
        client = running.vm_namespace(CLIENT_VM)
        for _, address in paths.values():  # warm up: ARP, first flows, conntrack
            _until(functools.partial(_connects, client, address), FIRST_PACKET_TIMEOUT)
        names_in_order = list(paths)
        for i in range(repeat):  # the order rotates, so the machine's noise hits all alike
            order = names_in_order[i % len(paths) :] + names_in_order[: i % len(paths)]
            rounds.append(_round(client, paths, order, seconds))
        for _ in range(repeat):
            first_packets.append(_put_to_first_packet(running, paths["nat"][1]))
    finally:
        for server in servers:
            server.kill()
            server.wait(10)
        orchestrator.down(topology.name)
    keys = ("tcp_mbit_s", "new_connections_per_s")
    results = {p: {k: round(_median(rounds, p, k), 1) for k in keys} for p in paths}
    base = results["vm_to_vm"]
    ratios = {
        f"{path}_over_vm_to_vm": {
            key: round(value / base[key], 3) if base[key] else 0.0 for key, value in r.items()
        }
        for path, r in results.items()
        if path != "vm_to_vm"
    }
    print(json.dumps({
        "benchmark": "gateway",
        "topology": "examples/gateways.yaml, PA subnets untagged (Fabrikam: host1 VM -> "
        "host2 VM, NAT, L3 VLAN 20)",
        "seconds_per_measure": seconds,
        "rounds": repeat,
        "paths": results,
        "ratios": ratios,
        "per_round": [
            {p: {k: round(v, 1) for k, v in r[p].items()} for p in paths} for r in rounds
        ],
        "put_virtual_gateway_to_first_packet_s": round(statistics.median(first_packets), 2),
        "put_virtual_gateway_to_first_packet_each_s": [round(t, 2) for t in first_packets],
        "first_packet_resolution_s": CONNECT_SECONDS,
    }, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
