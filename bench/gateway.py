"""Through the gateway: TCP throughput and new connections/s via outbound NAT and via L3
forwarding, next to a plain VM-to-VM flow in the same run, and PUT-to-first-packet.

Brings examples/gateways.yaml up, then from Fabrikam's VM 10.1.1.11 (host1) measures,
each against a sink/echo server of the bench: to its VM 10.1.1.12 (host2: VM to VM),
to the Internet server 203.0.113.1 (through Fabrikam's compartment on gw1, NAT), and to
the physical server 172.16.20.10 (the compartment's VLAN 20 leg, L3). Ratios are each
path over VM-to-VM. Then Fabrikam's virtual gateway is deleted and PUT again: the time
from the PUT to the first TCP connection through NAT. Prints JSON; needs root.
``--smoke`` does one short round.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from openhnv.lab import netns, orchestrator
from openhnv.lab.edge_builder import EdgeNames
from openhnv.lab.edge_resources import tenant_gateways
from openhnv.lab.rest import ControllerClient
from openhnv.lab.topology import load
from openhnv.testing.privileges import root_missing

GATEWAYS = Path(__file__).resolve().parents[1] / "examples" / "gateways.yaml"
PORT = 5001
CHUNK = 64 * 1024
CLIENT_VM = "fabrikam-vm1"
VGW = "Fabrikam-gw"
FIRST_PACKET_TIMEOUT = 60.0
ATTEMPT_SECONDS = 0.2


def _serve(sock: socket.socket, stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        threading.Thread(target=_drain, args=(conn,), daemon=True).start()


def _drain(conn: socket.socket) -> None:
    """Echo a short request (connection rate), swallow a bulk stream (throughput)."""
    with conn:
        conn.settimeout(10.0)
        try:
            while data := conn.recv(CHUNK):
                if len(data) == 1:
                    conn.sendall(data)
        except OSError:
            return


def _client() -> socket.socket:
    return socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def _throughput(namespace: str, address: str, seconds: float) -> float:
    """Mbit/s of one TCP stream for ``seconds``."""
    payload = b"\0" * CHUNK
    sock = netns.run_in(namespace, _client)
    with sock:
        sock.settimeout(10.0)
        sock.connect((address, PORT))
        sent, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            sent += sock.send(payload)
        elapsed = time.perf_counter() - start
    return sent * 8 / elapsed / 1e6


def _connections(namespace: str, address: str, seconds: float) -> float:
    """New TCP connections (connect, one byte each way, close) per second."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        sock = netns.run_in(namespace, _client)
        with sock:
            sock.settimeout(5.0)
            sock.connect((address, PORT))
            sock.sendall(b"x")
            sock.recv(1)
        count += 1
    return count / (time.perf_counter() - start)


def _connects(namespace: str, address: str) -> bool:
    sock = netns.run_in(namespace, _client)
    with sock:
        sock.settimeout(ATTEMPT_SECONDS)
        try:
            sock.connect((address, PORT))
        except OSError:
            return False
    return True


def _until(fn: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        if time.monotonic() > deadline:
            raise RuntimeError("not within the timeout")
        time.sleep(ATTEMPT_SECONDS / 4)


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one short round")
    args = parser.parse_args()
    missing = root_missing()
    if missing is not None:
        print(json.dumps({"skipped": missing}))
        return 0
    seconds = 0.5 if args.smoke else 5.0
    topology = dataclasses.replace(load(GATEWAYS), name=f"b{secrets.token_hex(3)}")
    names = EdgeNames(topology.name)
    running = orchestrator.up(topology)
    stop = threading.Event()
    paths = {
        "vm_to_vm": (running.vm_namespace("fabrikam-vm2"), "10.1.1.12"),
        "nat": (names.network("Internet"), "203.0.113.1"),
        "l3": (names.physical("fabsrv"), "172.16.20.10"),
    }
    results: dict[str, dict[str, float]] = {}
    try:
        for namespace, address in paths.values():
            server = netns.run_in(namespace, socket.create_server, (address, PORT))
            threading.Thread(target=_serve, args=(server, stop), daemon=True).start()
        client = running.vm_namespace(CLIENT_VM)
        for path, (_, address) in paths.items():
            results[path] = {
                "tcp_mbit_s": round(_throughput(client, address, seconds), 1),
                "new_connections_per_s": round(_connections(client, address, seconds), 1),
            }
        first_packet = _put_to_first_packet(running, paths["nat"][1])
    finally:
        stop.set()
        orchestrator.down(topology.name)
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
        "topology": "examples/gateways.yaml (Fabrikam: host1 VM -> host2 VM, NAT, L3 VLAN 20)",
        "seconds_per_measure": seconds,
        "paths": results,
        "ratios": ratios,
        "put_virtual_gateway_to_first_packet_s": round(first_packet, 2),
    }, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
