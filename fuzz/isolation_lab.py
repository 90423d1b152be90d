"""The long form of the namespace isolation test: random datacenters brought up as labs.

For each seed, ``isolation.random_datacenter(seed, --size)`` is written as a lab topology,
brought up in namespaces (controller, hosts, VMs; ``openhnv.lab``), probed with UDP and TCP
from every VM to every address of the datacenter, each delivery compared with
``isolation.expected_at``, and the lab removed (``openhnv.testing.fuzz.isolation_lab``).
Prints one JSON object (labs, VMs, probes, deliveries, cross-tenant deliveries,
mismatches with the first few described, seconds); exit 1 on any mismatch or
cross-tenant delivery. Needs root; ``--smoke``: one small lab.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import sys
import time
from collections.abc import Sequence

from openhnv.lab import orchestrator
from openhnv.lab.topology import from_document
from openhnv.testing.datapath_mode import fastpath_mode
from openhnv.testing.fuzz import isolation as iso
from openhnv.testing.fuzz.isolation_lab import LAB_SIZE, LONG_SIZE, probe_lab, topology
from openhnv.testing.privileges import root_missing

SHOWN = 5
SIZES = {"small": LAB_SIZE, "long": LONG_SIZE}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4, help="how many labs")
    parser.add_argument("--seed", type=int, default=100, help="the first lab's seed")
    parser.add_argument("--size", choices=sorted(SIZES), default="long")
    parser.add_argument("--fastpath", choices=orchestrator.FASTPATH_MODES,
                        default=None, help="default: HNV_TEST_FASTPATH, else auto")  # fmt: skip
    parser.add_argument("--smoke", action="store_true", help="one small lab")
    args = parser.parse_args(argv)
    missing = root_missing()
    if missing is not None:
        print(json.dumps({"benchmark": "isolation_lab", "skipped": missing}))
        return 0
    if args.smoke:
        args.seeds, args.size = 1, "small"
    fastpath = args.fastpath or fastpath_mode()
    began = time.monotonic()
    totals = {"labs": 0, "vms": 0, "probes": 0, "delivered": 0, "cross_tenant_deliveries": 0}
    mismatches: list[str] = []
    for seed in range(args.seed, args.seed + args.seeds):
        dc = iso.random_datacenter(random.Random(seed), SIZES[args.size])
        if len(dc.nics) < 2:
            continue  # nobody to probe
        lab = from_document(topology(dc, f"i{secrets.token_hex(3)}"))
        try:
            running = orchestrator.up(lab, fastpath=fastpath)
            outcome = probe_lab(dc, running, seed)
        finally:
            orchestrator.down(lab.name)
        totals["labs"] += 1
        for key, value in outcome.figures().items():
            if key != "mismatches":
                totals[key] += int(str(value))
        mismatches += [f"seed {seed}: {m}" for m in outcome.mismatches]
    print(json.dumps({
        "benchmark": "isolation_lab",
        "smoke": args.smoke,
        "fastpath": fastpath,
        "first_seed": args.seed,
        "size": args.size,
        **totals,
        "mismatches": len(mismatches),
        "first_mismatches": mismatches[:SHOWN],
        "seconds": round(time.monotonic() - began, 1),
    }))  # fmt: skip
    return 1 if mismatches or totals["cross_tenant_deliveries"] else 0


if __name__ == "__main__":
    sys.exit(main())
