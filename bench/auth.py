"""Benchmark the northbound API's authentication: requests refused without credentials,
and what TLS plus authentication costs a sequential PUT.

Starts two ``hnv controller`` processes on loopback in the same run: one plain
(``--auth none``) and one as the lab runs it (HTTPS, client certificates and tokens,
an audit log). Against the secure one it sends every route of the application (read
from ``create_app``) without credentials, with a wrong token and with a reader's token
(its writes), and counts the answers: every request without valid credentials must be
refused (401), every reader write 403. Then it PUTs NICs one after another on a
kept-alive connection to each controller, interleaved in rounds, and reports both rates
and their ratio (with the admin certificate, and with the admin token). Prints one JSON
object; ``--smoke`` does a tiny run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from starlette.routing import Route

from openhnv.api.app import Security, create_app
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore
from openhnv.lab import documents as nb
from openhnv.lab.access import ApiAccess
from openhnv.testing.processes import ControllerProcess

FIGURE8 = Path(__file__).resolve().parents[1] / "examples" / "figure8"
SERVERS = ("host1", "host2")
ROUNDS = 4
TOKEN_OFFSET = 20_000  # the token client's NICs (names, addresses) on the same controller
BODY = {"properties": {"type": "X509Certificate", "value": "AB12"}}
UNAUTHORIZED = 401
FORBIDDEN = 403


def routes() -> list[tuple[str, str]]:
    """Every (method, path) of the application, ids filled in."""
    app = create_app(ControllerService(SqliteStore(":memory:")), security=Security(True, True))
    found = []
    for route in app.routes:
        if isinstance(route, Route) and route.methods:
            path = route.path.replace("{", "").replace("}", "")
            found += [(method, path) for method in sorted(route.methods)]
    return found


def refusals(nc: ControllerProcess, access: ApiAccess) -> dict[str, Any]:
    """Every route without credentials and with a wrong token; a reader's writes."""
    table = routes()
    counts = {"without": 0, "wrong_token": 0, "reader_writes": 0}
    refused = dict.fromkeys(counts, 0)
    wrong = {"Authorization": "Bearer hnv_" + "x" * 43}
    reader = {"Authorization": f"Bearer {access.reader_token}"}
    context = access.ssl_context(certificate=False)
    with httpx.Client(base_url=nc.url, verify=context, timeout=30.0) as client:
        for method, path in table:
            for kind, headers, wanted in (
                ("without", {}, UNAUTHORIZED),
                ("wrong_token", wrong, UNAUTHORIZED),
                ("reader_writes", reader, FORBIDDEN),
            ):
                if kind == "reader_writes" and method in ("GET", "HEAD"):
                    continue
                counts[kind] += 1
                answer = client.request(method, path, json=BODY, headers=headers)
                refused[kind] += answer.status_code == wanted
    return {
        "auth_routes": len(table),
        "auth_requests_without_credentials": counts["without"],
        "auth_rejected_without_credentials": refused["without"],
        "auth_requests_wrong_token": counts["wrong_token"],
        "auth_rejected_wrong_token": refused["wrong_token"],
        "auth_reader_writes": counts["reader_writes"],
        "auth_reader_writes_forbidden": refused["reader_writes"],
        "auth_all_rejected": all(refused[k] == counts[k] for k in counts),
    }


def _fabric(client: httpx.Client) -> None:
    for file in sorted(FIGURE8.glob("*.json")):
        _, collection, resource_id = file.stem.split("-", 2)
        answer = client.put(f"/networking/v1/{collection}/{resource_id}", content=file.read_bytes())
        answer.raise_for_status()
    subnet = nb.virtual_subnet("web", "10.8.0.0/16")
    vnet = nb.virtual_network("Bench", ["10.8.0.0/16"], [subnet])
    client.put("/networking/v1" + vnet.path, json=vnet.body).raise_for_status()


def _put_rate(client: httpx.Client, first: int, count: int) -> float:
    """Seconds for ``count`` sequential NIC creations."""
    start = time.perf_counter()
    for i in range(first, first + count):
        config = nb.ip_configuration(f"10.8.{2 + i // 250}.{2 + i % 250}", "Bench", "web")
        nic = nb.network_interface(f"nic{i}", [config], server_name=SERVERS[i % 2])
        answer = client.put("/networking/v1" + nic.path, json=nic.body)
        if answer.status_code != httpx.codes.CREATED:
            raise SystemExit(f"bench: PUT {nic.path}: {answer.status_code} {answer.text[:300]}")
    return time.perf_counter() - start


def put_costs(plain: ControllerProcess, secure: ControllerProcess, nics: int) -> dict[str, Any]:
    """Sequential NIC PUT/s: plain, TLS + certificate, TLS + token; interleaved rounds."""
    access = secure.access
    assert access is not None
    token = {"Authorization": f"Bearer {access.admin_token}"}
    per_round = max(1, nics // ROUNDS)
    seconds = {"plain": 0.0, "certificate": 0.0, "token": 0.0}
    with contextlib.ExitStack() as stack:
        clients = {
            "plain": stack.enter_context(httpx.Client(base_url=plain.url, timeout=30.0)),
            "certificate": stack.enter_context(secure.http()),
            "token": stack.enter_context(
                httpx.Client(
                    base_url=secure.url,
                    verify=access.ssl_context(certificate=False),
                    headers=token,
                    timeout=30.0,
                )
            ),
        }
        _fabric(clients["plain"])
        _fabric(clients["certificate"])
        first = {"plain": 0, "certificate": 0, "token": TOKEN_OFFSET}
        for _ in range(ROUNDS):
            for name, client in clients.items():
                offset = first[name]
                seconds[name] += _put_rate(client, offset, per_round)
                first[name] = offset + per_round
    done = per_round * ROUNDS
    rate = {name: done / spent for name, spent in seconds.items()}
    return {
        "auth_put_nics": done,
        "auth_put_per_second_plain": round(rate["plain"], 1),
        "auth_put_per_second_tls_certificate": round(rate["certificate"], 1),
        "auth_put_per_second_tls_token": round(rate["token"], 1),
        "auth_put_ratio_tls_certificate_to_plain": round(rate["certificate"] / rate["plain"], 3),
        "auth_put_ratio_tls_token_to_plain": round(rate["token"] / rate["plain"], 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny run for make test")
    parser.add_argument(
        "--nics", type=int, default=800, help="NICs per client, < 20000 (%(default)s)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hnv-bench-auth-") as tmp:
        base = Path(tmp)
        access = ApiAccess.create(base / "pki")
        audit = str(base / "audit.jsonl")
        with (
            ControllerProcess(base / "plain.db") as plain,
            ControllerProcess(base / "secure.db", "--audit-log", audit, access=access) as secure,
        ):
            figures = refusals(secure, access)
            figures |= put_costs(plain, secure, 8 if args.smoke else args.nics)
    print(json.dumps(figures))
    return 0 if figures["auth_all_rejected"] else 1


if __name__ == "__main__":
    sys.exit(main())
