"""A reserved VM's share of a contended uplink: iperf3 from two VMs of one host at once.

The lab of ``openhnv.testing.contention``: host h1's uplink is ``--link`` Mbit/s wide
(``uplink_mbps``), VM ``resv`` reserves ``--reserved`` Mbit/s (``outboundReservedValue``),
VM ``other`` nothing; both send iperf3 TCP to VMs on h2 at once. Then the reservation is
lifted through REST and they contend again. Rates are of the outer frames on h1's
uplink (what the link and the reservation count).

Prints one JSON object: each sender's Mbit/s with and without the reservation, the
reserved VM's share of its reservation and of the link, medians over ``--rounds``
(``--smoke``: one round of two seconds). Needs root.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import secrets
import statistics
import sys
from collections.abc import Sequence
from typing import Any

from openhnv.lab import orchestrator
from openhnv.lab.topology import parse
from openhnv.testing.contention import Shares, contend, set_reservation, topology_text
from openhnv.testing.privileges import root_missing

LINK_MBPS, RESERVED_MBPS = 100, 60
SECONDS, SMOKE_SECONDS, OMIT = 4, 2, 1


def _figures(rounds: list[Shares]) -> dict[str, float]:
    def median(values: list[float]) -> float:
        return round(statistics.median(values), 1)

    return {"reserved_vm_mbps": median([r.reserved for r in rounds]),
            "other_vm_mbps": median([r.other for r in rounds]),
            "total_mbps": median([r.total for r in rounds])}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one round of two seconds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--link", type=int, default=LINK_MBPS, help="h1's uplink, Mbit/s")
    parser.add_argument("--reserved", type=int, default=RESERVED_MBPS, help="Mbit/s")
    parser.add_argument("--fastpath", choices=orchestrator.FASTPATH_MODES, default="auto")
    parser.add_argument("--encapsulation", choices=("vxlan", "nvgre"), default="vxlan")
    args = parser.parse_args(argv)
    missing = root_missing()
    if missing is not None:
        print(json.dumps({"skipped": missing}))
        return 0
    rounds = 1 if args.smoke else max(1, args.rounds)
    seconds = SMOKE_SECONDS if args.smoke else SECONDS
    text = topology_text(args.link, args.reserved, args.encapsulation)
    topology = dataclasses.replace(parse(text), name=f"b{secrets.token_hex(3)}")
    running = orchestrator.up(topology, fastpath=args.fastpath)
    try:
        reserved = [contend(running, seconds, OMIT) for _ in range(rounds)]
        set_reservation(running, 0)
        unreserved = [contend(running, seconds, OMIT) for _ in range(rounds)]
        fastpath = orchestrator.fastpath_of(running.run_dir)
    finally:
        orchestrator.down(topology.name)
    with_reservation = _figures(reserved)
    result: dict[str, Any] = {
        "benchmark": "reservation",
        "fastpath": fastpath,
        "encapsulation": args.encapsulation,
        "link_mbps": args.link,
        "reservation_mbps": args.reserved,
        "seconds": seconds,
        "rounds": rounds,
        "with_reservation": with_reservation,
        "without_reservation": _figures(unreserved),
        "share_of_reservation": round(with_reservation["reserved_vm_mbps"] / args.reserved, 3),
        "share_of_link": round(with_reservation["reserved_vm_mbps"] / args.link, 3),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
