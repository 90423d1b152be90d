"""Faults under traffic: per fault, the traffic gap, the convergence time and lost writes.

Brings examples/figure8.yaml up as the chaos suite does (``openhnv.testing.chaos``:
iperf3 and a probe stream between Contoso's VMs on two hosts, a stream of northbound
writes), injects every fault ``--rounds`` times (a host's controller connection cut for
``--seconds``) and prints one JSON object: each fault's figures, and the worst of each.
Needs root. ``--smoke`` runs the cut once, for one second. ``make chaos`` asserts the
same faults in tests/chaos and prints their figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import secrets
import sys
from pathlib import Path
from typing import Any

from openhnv.lab.topology import load
from openhnv.testing.chaos import suite
from openhnv.testing.chaos.suite import chaos_lab, fault_injections
from openhnv.testing.datapath_mode import fastpath_mode
from openhnv.testing.privileges import root_missing

FIGURE8 = Path(__file__).resolve().parents[1] / "examples" / "figure8.yaml"


def _quiet(_: str) -> None:
    return None


def run(names: list[str], rounds: int, seconds: float) -> dict[str, Any]:
    topology = dataclasses.replace(load(FIGURE8), name=f"b{secrets.token_hex(3)}")
    with chaos_lab(topology, progress=_quiet) as chaos:
        injections = fault_injections(chaos, seconds)
        for _ in range(rounds):
            for name in names:
                chaos.run(name, injections[name])
        figures = [r.figures() for r in chaos.results]
    return {
        "fastpath": fastpath_mode(),  # the data path of HNV_TEST_FASTPATH (unset: auto)
        "cut_seconds": seconds,
        "rounds": rounds,
        "faults": figures,
        "lost_writes": sum(f["lost_writes"] for f in figures),
        "not_converged": [f["fault"] for f in figures if f["convergence_s"] is None],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the cut once, for 1 s")
    parser.add_argument("--rounds", type=int, default=3, help="default %(default)s")
    parser.add_argument("--seconds", type=float, default=30.0, help="cut length (s)")
    args = parser.parse_args(argv)
    missing = root_missing()
    if missing is not None:
        print(json.dumps({"skipped": missing}))
        return 0
    if args.smoke:
        report = run([suite.CUT], 1, 1.0)
    else:
        names = [suite.CUT, suite.OVSDB_KILL, suite.CONTROLLER_KILL, suite.HOST_KILL]
        report = run([*names, suite.NAMESPACE_RESTART], args.rounds, args.seconds)
    print(json.dumps(report))
    return 1 if report["lost_writes"] or report["not_converged"] else 0


if __name__ == "__main__":
    sys.exit(main())
