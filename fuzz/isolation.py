"""The long form of the random-topology isolation test: random datacenters for a budget.

Each datacenter (``openhnv.testing.fuzz.isolation``) is compiled, planned and programmed
on the emulated PA network, probed from every NIC to every other with UDP and TCP, and
every delivery compared with the oracle. Prints one JSON object (datacenters, probes,
deliveries, cross-tenant deliveries, mismatches with the first few described); exit 1
on any mismatch. ``--smoke``: one second.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence

from openhnv.testing.fuzz import isolation as iso

SHOWN = 5


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1000, help="the first datacenter's seed")
    parser.add_argument("--smoke", action="store_true", help="one second")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seconds = 1.0
    end = time.monotonic() + args.seconds
    seed = args.seed
    datacenters = probes = delivered = cross = 0
    mismatches: list[str] = []
    while time.monotonic() < end:
        rnd = random.Random(seed)
        outcome = iso.probe(iso.random_datacenter(rnd), rnd)
        datacenters += 1
        probes += outcome.probes
        delivered += outcome.delivered
        cross += outcome.cross_tenant
        mismatches += [f"seed {seed}: {m}" for m in outcome.mismatches]
        seed += 1
    print(json.dumps({
        "benchmark": "isolation",
        "smoke": args.smoke,
        "datacenters": datacenters,
        "first_seed": args.seed,
        "probes": probes,
        "delivered": delivered,
        "cross_tenant_deliveries": cross,
        "mismatches": len(mismatches),
        "first_mismatches": mismatches[:SHOWN],
    }))  # fmt: skip
    return 1 if mismatches or cross else 0


if __name__ == "__main__":
    sys.exit(main())
