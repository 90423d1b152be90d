"""Benchmark the Network Controller's REST service: sequential PUT/s and GET/s on loopback.

Starts ``hnv controller`` as a subprocess on 127.0.0.1 with a temporary SQLite store,
builds the figure 8 fabric, then PUTs NICs one after another (each a new resource,
validated, allocated and committed in its own transaction), GETs each back, and replaces
each with an identical body. Prints one JSON object. ``--smoke`` does a tiny run.
Target (issue 3): >= 300 sequential PUT/s. The compiler's figures (full compile of 10k
NICs on 1k hosts, one-NIC incremental diff) are in ``bench/compiler.py``, which needs no
server and runs in-process.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from openhnv.lab import documents as nb
from openhnv.lab.documents import Resource
from openhnv.testing.processes import ControllerProcess

FIGURE8 = Path(__file__).resolve().parents[1] / "examples" / "figure8"
SERVERS = ("host1", "host2")  # figure 8's


def _nic(i: int) -> Resource:
    """NIC ``i`` in the Bench VNet's ``web`` subnet, a MAC from the pool, on host1 or host2."""
    config = nb.ip_configuration(f"10.8.{2 + i // 250}.{2 + i % 250}", "Bench", "web")
    return nb.network_interface(f"nic{i}", [config], server_name=SERVERS[i % 2])


class _Client:
    """A kept-alive HTTP/1.1 connection (stdlib), so the client costs little per request."""

    def __init__(self, base: str) -> None:
        url = urlsplit(base)
        self.prefix = url.path
        self.connection = http.client.HTTPConnection(
            url.hostname or "127.0.0.1", url.port, timeout=30
        )

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.connection.request(method, self.prefix + path, body=body, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()


def _timed(
    client: _Client, method: str, requests: list[tuple[str, bytes | None]], expect: int
) -> float:
    start = time.perf_counter()
    for path, body in requests:
        status, text = client.request(method, path, body)
        if status != expect:
            raise SystemExit(f"bench: {method} {path}: {status} {text[:300]!r}")
    return time.perf_counter() - start


def rest_figures(nics: int) -> dict[str, Any]:
    """Sequential PUT (create), GET and PUT (unchanged replace) rates over loopback."""
    with (
        tempfile.TemporaryDirectory(prefix="hnv-bench-") as tmp,
        ControllerProcess(Path(tmp) / "controller.db") as controller,
    ):
        client = _Client(controller.base)
        try:
            for file in sorted(FIGURE8.glob("*.json")):
                _, collection, resource_id = file.stem.split("-", 2)
                client.request("PUT", f"/{collection}/{resource_id}", file.read_bytes())
            subnet = nb.virtual_subnet("web", "10.8.0.0/16")
            vnet = nb.virtual_network("Bench", ["10.8.0.0/16"], [subnet])
            client.request("PUT", vnet.path, json.dumps(vnet.body).encode())
            resources = [_nic(i) for i in range(nics)]
            puts = [(r.path, json.dumps(r.body).encode()) for r in resources]
            gets: list[tuple[str, bytes | None]] = [(path, None) for path, _ in puts]
            put_seconds = _timed(client, "PUT", list(puts), 201)
            get_seconds = _timed(client, "GET", gets, 200)
            replace_seconds = _timed(client, "PUT", list(puts), 200)
        finally:
            client.close()
    return {
        "rest_nics": nics,
        "rest_put_per_second": round(nics / put_seconds, 1),
        "rest_get_per_second": round(nics / get_seconds, 1),
        "rest_unchanged_put_per_second": round(nics / replace_seconds, 1),
        "rest_put_target_per_second": 300,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny run for make test")
    parser.add_argument("--nics", type=int, default=2000, help="NICs to PUT (default %(default)s)")
    args = parser.parse_args(argv)
    figures = rest_figures(30 if args.smoke else args.nics)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
