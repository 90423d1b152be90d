"""The lab end to end: how long `hnv lab up` takes, and TCP between VMs through it all.

Brings examples/figure8.yaml up (fabric, controller, hosts, every resource through the
REST API, every NIC Succeeded), then measures between Contoso Web and Contoso SQL
(host2 -> host1, over the PA router): TCP connect + one request/answer round trips
(each a new flow: slow path on both hosts) and request/answer round trips on one
established connection (fast path), then the time `down` takes. Prints JSON; needs root.
``--smoke`` does one short round.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import secrets
import socket
import statistics
import threading
import time
from pathlib import Path

from openhnv.lab import netns, orchestrator
from openhnv.lab.topology import load
from openhnv.testing.privileges import root_missing

FIGURE8 = Path(__file__).resolve().parents[1] / "examples" / "figure8.yaml"
PORT = 1433


def _echo_server(sock: socket.socket, stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        threading.Thread(target=_echo, args=(conn,), daemon=True).start()


def _echo(conn: socket.socket) -> None:
    with conn:
        while True:
            data = conn.recv(64)
            if not data:
                return
            conn.sendall(data)


def _client() -> socket.socket:
    return socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def _new_flows(namespace: str, count: int) -> list[float]:
    """Milliseconds for connect + one round trip + close, each on a new connection."""
    times = []
    for _ in range(count):
        sock = netns.run_in(namespace, _client)
        start = time.perf_counter()
        with sock:
            sock.settimeout(5.0)
            sock.connect(("10.1.1.11", PORT))
            sock.sendall(b"x")
            sock.recv(64)
        times.append((time.perf_counter() - start) * 1000)
    return times


def _round_trips(namespace: str, seconds: float) -> tuple[int, float]:
    """Request/answer round trips on one connection for ``seconds``: (count, per second)."""
    sock = netns.run_in(namespace, _client)
    with sock:
        sock.settimeout(5.0)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.connect(("10.1.1.11", PORT))
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            sock.sendall(b"x")
            sock.recv(64)
            count += 1
        elapsed = time.perf_counter() - start
    return count, count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one short round")
    args = parser.parse_args()
    missing = root_missing()
    if missing is not None:
        print(json.dumps({"skipped": missing}))
        return 0
    flows, seconds = (3, 0.5) if args.smoke else (50, 3.0)
    topology = dataclasses.replace(load(FIGURE8), name=f"b{secrets.token_hex(3)}")
    start = time.perf_counter()
    running = orchestrator.up(topology)
    up_seconds = time.perf_counter() - start
    stop = threading.Event()
    try:
        server = netns.run_in(
            running.vm_namespace("contoso-sql"), socket.create_server, ("10.1.1.11", PORT)
        )
        threading.Thread(target=_echo_server, args=(server, stop), daemon=True).start()
        web = running.vm_namespace("contoso-web")
        first = _new_flows(web, 1)[0]
        new_flows = _new_flows(web, flows)
        trips, rate = _round_trips(web, seconds)
    finally:
        stop.set()
        start = time.perf_counter()
        orchestrator.down(topology.name)
        down_seconds = time.perf_counter() - start
    print(json.dumps({
        "benchmark": "lab",
        "topology": "examples/figure8.yaml (2 hosts, 4 VMs, VXLAN, VLAN 20 on one PA subnet)",
        "lab_up_seconds": round(up_seconds, 2),
        "lab_down_seconds": round(down_seconds, 2),
        "first_tcp_flow_ms": round(first, 2),
        "new_tcp_flow_ms_median": round(statistics.median(new_flows), 2),
        "new_flows": len(new_flows),
        "established_round_trips": trips,
        "established_round_trips_per_second": round(rate),
    }, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
