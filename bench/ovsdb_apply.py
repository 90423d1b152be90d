"""Southbound write and resync costs against a real ovsdb-server (openhnv.ovsdb).

Prints one JSON object: the time to commit N CA->PA mappings in one transaction (one
VNet's NICs arriving at once), the latency of single-mapping transactions (median,
p99), the time for a fresh client (a restarted agent) to mirror the N mappings, and
the time of a full resync that finds nothing to change. ``--smoke`` runs a tiny size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from openhnv.ovsdb.client import OvsdbClient
from openhnv.ovsdb.rows import DesiredState, Ref, Row, RowChange, diff
from openhnv.ovsdb.server import OvsdbServer

VSID = "5001"
HOSTS = 10


def pa(host: int) -> str:
    return f"192.168.1.{10 + host}"


def mapping(i: int) -> tuple[str, Row]:
    mac = f"00:1d:d8:{(i >> 16) & 0xFF:02x}:{(i >> 8) & 0xFF:02x}:{i & 0xFF:02x}"
    ip = f"10.{(i >> 16) & 0xFF}.{(i >> 8) & 0xFF}.{i & 0xFF}"
    row: Row = {
        "MAC": mac,
        "ipaddr": ip,
        "logical_switch": Ref("Logical_Switch", VSID),
        "locator": Ref("Physical_Locator", f"vxlan_over_ipv4:{pa(i % HOSTS)}"),
        "mapping_type": "remote",
    }
    return f"{VSID}/{mac}/{ip}", row


def desired(n: int) -> DesiredState:
    return {
        "Logical_Switch": {VSID: {"name": VSID, "tunnel_key": int(VSID)}},
        "Physical_Locator": {
            f"vxlan_over_ipv4:{pa(h)}": {"dst_ip": pa(h), "encapsulation_type": "vxlan_over_ipv4"}
            for h in range(HOSTS)
        },
        "Ucast_Macs_Remote": dict(mapping(i) for i in range(n)),
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(n: int, trials: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="hnv-bench-") as tmp:
        server = OvsdbServer(Path(tmp) / "host")
        server.start()
        try:
            with OvsdbClient(server.unix_remote) as client:
                client.wait_synced()
                state = desired(n)
                t0 = time.perf_counter()
                client.apply(diff({}, state), timeout=120)
                bulk = time.perf_counter() - t0

                singles = []
                for i in range(n, n + trials):
                    key, row = mapping(i)
                    t0 = time.perf_counter()
                    client.apply([RowChange("insert", "Ucast_Macs_Remote", key, row)])
                    singles.append((time.perf_counter() - t0) * 1000)
                    state["Ucast_Macs_Remote"][key] = row  # type: ignore[index]

                t0 = time.perf_counter()
                noop = client.replace_all(state, timeout=120)
                resync = time.perf_counter() - t0
                if noop:
                    raise RuntimeError(f"a resync of an in-sync host found {len(noop)} changes")

            t0 = time.perf_counter()
            with OvsdbClient(server.unix_remote) as fresh:
                fresh.wait_synced(120)
                mirrored = len(fresh.snapshot(["Ucast_Macs_Remote"])["Ucast_Macs_Remote"])
                restart = time.perf_counter() - t0
        finally:
            server.stop()
    return {
        "mappings": n,
        "bulk_insert_s": round(bulk, 4),
        "single_mapping_apply_ms": {
            "trials": trials,
            "median": round(statistics.median(singles), 3),
            "p99": round(percentile(singles, 0.99), 3),
        },
        "full_resync_noop_s": round(resync, 4),
        "fresh_client_mirror_s": round(restart, 4),
        "fresh_client_mappings": mirrored,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a tiny run")
    args = parser.parse_args(argv)
    result = run(50, 20) if args.smoke else run(1000, 200)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
