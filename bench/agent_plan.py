"""Benchmark of the host agent's core: plan a host's rows and program an engine.

The datacenter is the compiler benchmark's (``testing.snapshots.synthetic_datacenter``);
the host measured is the one with the most rows. Figures: a full plan (rows -> catalog
-> plan), the first programming of an empty engine, and one NIC of the host's virtual
networks moving to another host: the re-plan of every row (what the agent does for a batch it cannot
patch), the difference, and the commands that difference sends. Then what the agent
does for a batch of mapping rows only (``agent.incremental``): one remote
``Ucast_Macs_Remote`` row deleted or inserted, patched into the last plan (the units
included) and its units applied through a ``HostSwitch`` (NullDriver), and the indexes
built once per full plan.

Prints one JSON object. ``--smoke`` runs a tiny datacenter.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import sys
import time
from collections.abc import Sequence

from openhnv.agent.apply import apply_units
from openhnv.agent.incremental import UCAST, PlanState
from openhnv.agent.planner import EMPTY_PLAN, changes, plan
from openhnv.agent.rows import read_catalog
from openhnv.controller.compiler.compile import compile_datacenter, compile_host
from openhnv.ovsdb.rows import DesiredState
from openhnv.testing.snapshots import synthetic_datacenter
from openhnv.vfp.engine import VfpEngine
from openhnv.vswitch.null import NullDriver
from openhnv.vswitch.switch import HostSwitch


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny datacenter")
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--vnets", type=int, default=50)
    parser.add_argument("--nics", type=int, default=4000)
    parser.add_argument("--changes", type=int, default=20, help="one-NIC moves to time")
    parser.add_argument("--rows", type=int, default=200, help="mapping rows to patch")
    args = parser.parse_args(argv)
    if args.smoke:
        args.hosts, args.vnets, args.nics, args.changes, args.rows = 10, 5, 100, 3, 10
    snapshot = synthetic_datacenter(args.hosts, args.vnets, args.nics)
    states = compile_datacenter(snapshot).hosts
    sizes = {h: sum(len(r) for r in state.values()) for h, state in states.items()}
    host = max(sizes, key=sizes.__getitem__)
    rows = states[host]

    plan_ms: list[float] = []
    for _ in range(1 if args.smoke else 5):
        start = time.perf_counter()
        full = plan(read_catalog(rows))
        plan_ms.append((time.perf_counter() - start) * 1000)
    if full.problems:
        print(f"error: problems in the synthetic rows: {full.problems[:3]}", file=sys.stderr)
        return 1
    start = time.perf_counter()
    engine = VfpEngine()
    units = changes(EMPTY_PLAN, full)
    for unit in units:
        engine.programming.apply_all(unit.commands)
    first_ms = (time.perf_counter() - start) * 1000

    rnd = random.Random(3)
    docs = snapshot["networkInterfaces"]
    replan_ms: list[float] = []
    commands: list[int] = []
    current = full
    for _ in range(args.changes):
        doc = copy.deepcopy(docs[rnd.randrange(len(docs))])
        doc["properties"]["server"] = {"resourceRef": f"/servers/host{rnd.randrange(args.hosts)}"}
        docs[:] = [d if d["resourceRef"] != doc["resourceRef"] else doc for d in docs]
        new_rows = compile_host(snapshot, host)
        start = time.perf_counter()
        new = plan(read_catalog(new_rows))
        diff = changes(current, new)
        replan_ms.append((time.perf_counter() - start) * 1000)
        for unit in diff:
            engine.programming.apply_all(unit.commands)
        commands.append(sum(len(u.commands) for u in diff))
        current = new
    patch_us, apply_us, index_ms, fallbacks = patch_figures(rows, rnd, args.rows)
    result = {
        "benchmark": "agent_plan",
        "smoke": args.smoke,
        "hosts": args.hosts,
        "vnets": args.vnets,
        "nics": args.nics,
        "host_rows": sum(len(r) for r in rows.values()),
        "host_ports": len(full.ports),
        "host_mappings": len(full.mappings),
        "host_fw_rules": len(rows.get("FW_Rules", {})),
        "full_plan_ms_median": round(statistics.median(plan_ms), 2),
        "first_programming_ms": round(first_ms, 2),
        "first_programming_commands": sum(len(u.commands) for u in units),
        "one_nic_replan_and_diff_ms_median": round(statistics.median(replan_ms), 2),
        "one_nic_commands_mean": round(statistics.mean(commands), 1),
        "one_mapping_row_patch_us_median": round(statistics.median(patch_us), 1),
        "one_mapping_row_patch_us_p99": round(_p99(patch_us), 1),
        "one_mapping_row_switch_apply_us_median": round(statistics.median(apply_us), 1),
        "mapping_rows_patched": len(patch_us),
        "mapping_rows_needing_a_full_plan": fallbacks,
        "patch_indexes_per_full_plan_ms": round(index_ms, 2),
    }
    print(json.dumps(result))
    return 0


def patch_figures(
    desired: DesiredState, rnd: random.Random, count: int
) -> tuple[list[float], list[float], float, int]:
    """Remote mapping rows deleted and inserted again, one per batch, patched into the
    plan and applied: the time of each patch and each apply (µs), of the indexes (ms),
    how many needed a full plan."""
    rows = {t: dict(r) for t, r in desired.items()}
    catalog, full = read_catalog(rows), plan(read_catalog(rows))
    start = time.perf_counter()
    state = PlanState(catalog, full)
    index_ms = (time.perf_counter() - start) * 1000
    remote = sorted(k for k, r in rows[UCAST].items() if r["mapping_type"] == "remote")
    switch = HostSwitch(VfpEngine(), NullDriver(), expire_interval=None)
    switch.start()
    apply_units(switch, changes(EMPTY_PLAN, full))
    took: list[float] = []
    applied: list[float] = []
    fallbacks = 0
    for _ in range(count):
        key = remote[rnd.randrange(len(remote))]
        for row in (None, rows[UCAST][key]):
            start = time.perf_counter()
            patch = state.update({(UCAST, key): row})
            took.append((time.perf_counter() - start) * 1e6)
            if patch is None:
                fallbacks += 1
                state = PlanState(read_catalog(rows), plan(read_catalog(rows)))
                continue
            start = time.perf_counter()
            apply_units(switch, patch.units)
            applied.append((time.perf_counter() - start) * 1e6)
    switch.stop()
    return took, applied, index_ms, fallbacks


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


if __name__ == "__main__":
    sys.exit(main())
