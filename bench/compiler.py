"""Benchmark of the policy compiler: full compile of a datacenter and one-NIC incremental diffs.

The datacenter: HOSTS servers with two PAs each (a team of two), VNETS virtual networks of
two subnets each (one with a subnet ACL of 4 rules), NICS NICs spread evenly over the
virtual networks and at random (seeded) over the hosts, every other NIC with a 3-rule NIC
ACL. Targets (issue 3): full compile of 10k NICs on 1k hosts <= 5 s; one NIC change to
the row changes of every affected host <= 10 ms.

Wall-clock figures (``*_s``, ``*_ms``) meet the targets; ``*_cpu_*`` figures are the
process CPU time of the same work, steadier when other jobs share the cores.

Prints one JSON object. ``--smoke`` runs a tiny datacenter.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from openhnv.controller.compiler.compile import Compiler, compile_datacenter
from openhnv.controller.compiler.index import Index

FULL_TARGET_S = 5.0
INCREMENTAL_TARGET_MS = 10.0


def _doc(ref: str, props: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceId": ref.rsplit("/", 1)[-1],
        "resourceRef": ref,
        "instanceId": str(uuid.uuid5(uuid.NAMESPACE_URL, ref)),
        "properties": {**props, "provisioningState": "Succeeded"},
    }


def _rule(name: str, direction: str, action: str, priority: int, **kw: Any) -> dict[str, Any]:
    props = {
        "protocol": kw.get("protocol", "All"),
        "sourcePortRange": "0-65535",
        "destinationPortRange": kw.get("ports", "0-65535"),
        "sourceAddressPrefix": kw.get("source", "*"),
        "destinationAddressPrefix": kw.get("destination", "*"),
        "action": action,
        "priority": priority,
        "type": direction,
        "logging": "Disabled",
    }
    return {"resourceId": name, "properties": props}


def datacenter(hosts: int, vnets: int, nics: int, seed: int = 1) -> dict[str, list[Any]]:
    """A synthetic snapshot of the shape described in the module docstring."""
    rnd = random.Random(seed)
    servers = []
    for h in range(hosts):
        pas = [
            {
                "address": f"172.{16 + m}.{h // 250}.{h % 250 + 1}",
                "prefixLength": 16,
                "vlanID": 10 + m,
                "defaultGateway": f"172.{16 + m}.255.254",
                "networkInterface": {"resourceRef": f"/servers/host{h}/networkInterfaces/p{m}"},
            }
            for m in range(2)
        ]
        servers.append(
            _doc(
                f"/servers/host{h}",
                {
                    "connections": [{"managementAddresses": [f"10.0.{h // 250}.{h % 250 + 1}"]}],
                    "providerAddresses": pas,
                },
            )
        )
    acls = [
        _doc(
            "/accessControlLists/subnet-acl",
            {
                "aclRules": [
                    _rule("deny-internet-in", "Inbound", "Deny", 100, source="Internet"),
                    _rule("allow-web", "Inbound", "Allow", 200, protocol="TCP", ports="443"),
                    _rule("deny-smb-out", "Outbound", "Deny", 300, protocol="TCP", ports="445"),
                    _rule("allow-dns", "Outbound", "Allow", 400, protocol="UDP", ports="53"),
                ]
            },
        ),
        _doc(
            "/accessControlLists/nic-acl",
            {
                "aclRules": [
                    _rule("allow-sql", "Inbound", "Allow", 100, protocol="TCP", ports="1433"),
                    _rule("allow-icmp", "Inbound", "Allow", 110, protocol="ICMP"),
                    _rule("deny-out-internet", "Outbound", "Deny", 120, destination="Internet"),
                ]
            },
        ),
    ]
    networks = []
    for v in range(vnets):
        ref = f"/virtualNetworks/tenant{v}"
        subnets = [
            _doc(
                f"{ref}/subnets/s{s}",
                {
                    "addressPrefix": f"10.{s}.0.0/16",
                    "virtualSubnetId": 5000 + 2 * v + s,
                    **(
                        {"accessControlList": {"resourceRef": "/accessControlLists/subnet-acl"}}
                        if s == 0
                        else {}
                    ),
                },
            )
            for s in range(2)
        ]
        networks.append(
            _doc(
                ref,
                {
                    "addressSpace": {"addressPrefixes": ["10.0.0.0/15"]},
                    "routingDomainId": str(uuid.uuid5(uuid.NAMESPACE_URL, ref + "#rdid")),
                    "subnets": subnets,
                },
            )
        )
    interfaces = []
    for n in range(nics):
        v, s = n % vnets, (n // vnets) % 2
        ip = f"10.{s}.{(n // vnets) // 250}.{(n // vnets) % 250 + 4}"
        config: dict[str, Any] = {
            "privateIPAddress": ip,
            "subnet": {"resourceRef": f"/virtualNetworks/tenant{v}/subnets/s{s}"},
        }
        if n % 2:
            config["accessControlList"] = {"resourceRef": "/accessControlLists/nic-acl"}
        interfaces.append(
            _doc(
                f"/networkInterfaces/nic{n}",
                {
                    "privateMacAddress": f"001DD8{n:06X}",
                    "ipConfigurations": [{"resourceId": "ipconfig1", "properties": config}],
                    "server": {"resourceRef": f"/servers/host{rnd.randrange(hosts)}"},
                },
            )
        )
    return {
        "servers": servers,
        "accessControlLists": acls,
        "virtualNetworks": networks,
        "networkInterfaces": interfaces,
        "virtualNetworkManager": [],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny datacenter")
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--vnets", type=int, default=500)
    parser.add_argument("--nics", type=int, default=10000)
    parser.add_argument("--changes", type=int, default=200, help="one-NIC changes to time")
    args = parser.parse_args(argv)
    if args.smoke:
        args.hosts, args.vnets, args.nics, args.changes = 20, 10, 100, 20
    snapshot = datacenter(args.hosts, args.vnets, args.nics)

    runs = []
    cpu_runs = []
    for _ in range(1 if args.smoke else 3):
        start, cpu_start = time.perf_counter(), time.process_time()
        compiled = compile_datacenter(snapshot)
        runs.append(time.perf_counter() - start)
        cpu_runs.append(time.process_time() - cpu_start)
    rows = sum(len(r) for state in compiled.hosts.values() for r in state.values())
    if compiled.problems:
        print(
            f"error: the synthetic datacenter has problems: {compiled.problems[:3]}",
            file=sys.stderr,
        )
        return 1

    del compiled  # only the compiler's own state stays alive, as in a controller
    index = Index.build(snapshot)
    compiler = Compiler(index)
    compiler.datacenter()
    # What a long-lived controller does after its full compile: move the ~0.5M rows
    # it keeps out of the cyclic collector's full scans (each takes ~0.5 s at this size).
    gc.collect()
    gc.freeze()
    rnd = random.Random(2)
    nic_docs = snapshot["networkInterfaces"]
    timings_ms: list[float] = []
    cpu_ms: list[float] = []
    affected: list[int] = []
    changes: list[int] = []
    for _ in range(args.changes):
        doc = copy.deepcopy(nic_docs[rnd.randrange(len(nic_docs))])
        doc["properties"]["server"] = {"resourceRef": f"/servers/host{rnd.randrange(args.hosts)}"}
        ref = doc["resourceRef"]
        start, cpu_start = time.perf_counter(), time.process_time()
        index = index.replace_nic(ref, doc)
        update = compiler.update(index, [ref])
        timings_ms.append((time.perf_counter() - start) * 1000)
        cpu_ms.append((time.process_time() - cpu_start) * 1000)
        compiler = update.compiler
        affected.append(len(update.changes))
        changes.append(sum(len(c) for c in update.changes.values()))
    timings_ms.sort()
    full_s = statistics.median(runs)
    median_ms = statistics.median(timings_ms)
    result = {
        "benchmark": "compiler",
        "smoke": args.smoke,
        "hosts": args.hosts,
        "vnets": args.vnets,
        "nics": args.nics,
        "rows_total": rows,
        "rows_per_host_mean": round(rows / args.hosts, 1),
        "full_compile_s": round(full_s, 3),
        "full_compile_runs_s": [round(r, 3) for r in runs],
        "full_compile_cpu_s": round(statistics.median(cpu_runs), 3),
        "full_compile_target_s": FULL_TARGET_S,
        "full_compile_meets_target": full_s <= FULL_TARGET_S,
        "one_nic_changes": args.changes,
        "gc_frozen_after_full_compile": True,
        "one_nic_affected_hosts_mean": round(statistics.mean(affected), 1),
        "one_nic_row_changes_mean": round(statistics.mean(changes), 1),
        "one_nic_diff_ms_median": round(median_ms, 3),
        "one_nic_diff_ms_p95": round(timings_ms[int(0.95 * (len(timings_ms) - 1))], 3),
        "one_nic_diff_ms_max": round(timings_ms[-1], 3),
        "one_nic_diff_cpu_ms_median": round(statistics.median(cpu_ms), 3),
        "one_nic_diff_target_ms": INCREMENTAL_TARGET_MS,
        "one_nic_diff_meets_target": median_ms <= INCREMENTAL_TARGET_MS,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
