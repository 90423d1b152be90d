"""Tenant abuse: a VM's TCP throughput while another VM on its host floods new flows and
broadcasts, against the same without the flood (issue 13: within 20 % of normal).

One lab per variant, each with hosts h1 and h2 on one PA subnet; the victim v1 and the
attacker v3 on h1, v2 on h2; each host's switch (HostSwitch on the Linux driver) runs in
a process of its own inside the host namespace:

- ``fastpath_off`` / ``fastpath_on``: without or with the kernel fast path (VM offloads
  off / on), the default abuse limits of ``hnv host`` (``vfp.limits.DEFAULT_LIMITS``),
  metered first by the port's socket filter (docs/vfp.md) and then by the engine;
- ``fastpath_off_unlimited`` / ``fastpath_on_unlimited`` (not in ``--smoke``): the
  same without any limit, to show what the limits buy.

In each, ``--rounds`` rounds (order alternating) of one iperf3 TCP run v1 -> v2 of
``--seconds`` without the flood and one during it. The flood (``openhnv.testing.flood``
inside v3's namespace) sends SYNs toward v2, each on a new 5-tuple, half of them from
spoofed sources of v3's subnet, plus UDP broadcasts and ARP requests, at the rates
asked (a rate the generator cannot reach is sent as fast as it can). The victim's
figure is the ratio of the median throughputs, flood / normal (target >= 0.8); the
switch's counters of h1 show what each limit dropped. Both switches and the flood run
on the same two cores as iperf3: the flood's generator itself takes CPU the victim's
iperf3 would otherwise have (on a real host a VM's vCPUs are its own), so the
generator's CPU seconds are reported too.

Prints one JSON object. Needs root. ``--smoke``: one-second runs, one round, the
limited variants only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openhnv.lab import netns
from openhnv.lab.errors import LabError
from openhnv.testing.dataplane import DataplaneLab, SwitchProcess, document, lab_name, port_id
from openhnv.testing.flood import Flood
from openhnv.testing.privileges import root_missing
from openhnv.vfp.limits import DEFAULT_LIMITS, LIMIT_REASONS, NO_LIMITS, PortLimits
from openhnv.vswitch.fastpath.probe import probe

IPERF_PORT = 5211
TARGET = 0.8  # >= : victim throughput during the flood / without it
VARIANTS = ("fastpath_off", "fastpath_on", "fastpath_off_unlimited", "fastpath_on_unlimited")
SMOKE_VARIANTS = ("fastpath_off", "fastpath_on")
FLOOD_LEAD = 0.5  # seconds the flood runs before the victim's run starts
FLOOD_SPARE = 2.0  # seconds of SYNs made beyond the run (the flood's pool)
OWNER = os.getpid()


def on_term(signum: int, _frame: object) -> None:
    """SIGTERM unwinds (labs and processes go); a forked child just exits."""
    if os.getpid() != OWNER:
        os._exit(128 + signum)
    sys.exit(128 + signum)


def iperf_gbit_s(lab: DataplaneLab, seconds: float) -> float:
    """One iperf3 TCP run v1 -> v2: the receiver's Gbit/s."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", lab.vm_ns("v2"), "iperf3", "-s", "-1", "-p", str(IPERF_PORT)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        argv = ["iperf3", "-c", lab.vm_ip("v2"), "-p", str(IPERF_PORT), "-J", "-t", str(seconds)]
        report: dict[str, Any] = {}
        for _ in range(50):
            try:
                result = netns.exec_in(lab.vm_ns("v1"), argv, check=False, timeout=seconds + 30)
            except LabError as exc:
                report = {"error": str(exc)}
                break
            report = json.loads(result.stdout or "{}")
            if "unable to connect" not in str(report.get("error", "")):
                break
            time.sleep(0.1)  # the server is not listening yet
        if "end" not in report:
            raise RuntimeError(f"iperf3: {report.get('error', report)}")
        return round(float(report["end"]["sum_received"]["bits_per_second"]) / 1e9, 3)
    finally:
        if server.poll() is None:
            server.terminate()
        server.wait(10)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Variant:
    """One lab and its two switch processes."""

    def __init__(self, name: str, root: Path, limits: PortLimits) -> None:
        self.name = name
        fastpath = "on" if name.startswith("fastpath_on") else "off"
        doc = document(lab_name("ab"), vms=(("v1", "h1"), ("v2", "h2"), ("v3", "h1")))
        self.lab = DataplaneLab(doc, root, fastpath=fastpath, limits=limits)
        self.root = root
        self.h1: SwitchProcess | None = None

    def __enter__(self) -> Variant:
        self.lab.__enter__()
        try:
            procs = [self.lab.start_process(h, self.root) for h in ("h1", "h2")]
            for p in procs:
                p.wait_ready()
            self.h1 = procs[0]
        except BaseException:
            self.lab.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.lab.close()

    def limit_drops(self) -> dict[str, dict[str, int]]:
        """VM -> drops by limit reason, of h1's ports: by the engine, and by the port's
        socket filter (``<reason> in the kernel``)."""
        assert self.h1 is not None
        stats = self.h1.statistics()
        ports, kernel = stats["ports"], stats.get("kernel_limit_drops", {})
        return {vm: {**{r: ports[port_id(vm)].get(f"drop:{r}", 0) for r in LIMIT_REASONS},
                     **{f"{r} in the kernel": n for r, n in kernel.get(port_id(vm), {}).items()}}
                for vm in ("v1", "v3")}  # fmt: skip

    def flood(self, rates: dict[str, float], seconds: float) -> Flood:
        lab = self.lab
        ends = {"src_mac": str(lab.topology.vm("v3").mac), "src_ip": lab.vm_ip("v3"),
                "dst_mac": str(lab.topology.vm("v2").mac), "dst_ip": lab.vm_ip("v2")}  # fmt: skip
        return Flood(lab.vm_ns("v3"), ends, spoof=0.5, seconds=seconds, **rates)


def measure(
    variant: Variant, seconds: float, rounds: int, rates: dict[str, float]
) -> dict[str, Any]:
    normal: list[float] = []
    flooded: list[float] = []
    floods: list[dict[str, Any]] = []
    switch_cpu: list[float] = []
    assert variant.h1 is not None
    iperf_gbit_s(variant.lab, min(seconds, 1.0))  # warm-up: ARP, first flows
    for i in range(rounds):
        for with_flood in (False, True) if i % 2 == 0 else (True, False):
            if not with_flood:
                normal.append(iperf_gbit_s(variant.lab, seconds))
                continue
            cpu = process_cpu(variant.h1.pid)
            with variant.flood(rates, FLOOD_LEAD + seconds + FLOOD_SPARE) as flood:
                time.sleep(FLOOD_LEAD)
                flooded.append(iperf_gbit_s(variant.lab, seconds))
            switch_cpu.append(round(process_cpu(variant.h1.pid) - cpu, 2))
            floods.append(flood.report)
    ratio = round(statistics.median(flooded) / statistics.median(normal), 3)
    return {
        "normal_gbit_s": normal,
        "flood_gbit_s": flooded,
        "ratio": ratio,
        "holds": ratio >= TARGET,
        "floods": floods,
        "h1_switch_cpu_s_during_flood": switch_cpu,
        "limit_drops": variant.limit_drops(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one-second runs, one round")
    parser.add_argument("--seconds", type=float, default=5.0, help="per iperf3 run")
    parser.add_argument("--rounds", type=int, default=2, help="normal + flood runs (median)")
    parser.add_argument("--syn-pps", type=float, default=100_000.0)
    parser.add_argument("--broadcast-pps", type=float, default=5_000.0)
    parser.add_argument("--arp-pps", type=float, default=2_000.0)
    parser.add_argument("--only", action="append", choices=VARIANTS, help="repeatable")
    args = parser.parse_args(argv)
    missing = root_missing()
    if missing is not None:
        print(json.dumps({"skipped": missing}))
        return 0
    seconds = 1.0 if args.smoke else args.seconds
    rounds = 1 if args.smoke else max(1, args.rounds)
    variants = args.only or list(SMOKE_VARIANTS if args.smoke else VARIANTS)
    rates = {"syn_pps": args.syn_pps, "broadcast_pps": args.broadcast_pps,
             "arp_pps": args.arp_pps}  # fmt: skip
    signal.signal(signal.SIGTERM, on_term)
    fastpath_problem = probe()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hnv-bench-") as tmp:
        for name in variants:
            if name.startswith("fastpath_on") and fastpath_problem is not None:
                results[name] = {"skipped": f"no kernel fast path: {fastpath_problem}"}
                continue
            limits = NO_LIMITS if name.endswith("unlimited") else DEFAULT_LIMITS
            with Variant(name, Path(tmp), limits) as variant:
                results[name] = measure(variant, seconds, rounds, rates)
    ratios = {n: r["ratio"] for n, r in results.items() if "ratio" in r}
    limited = [r for n, r in ratios.items() if not n.endswith("unlimited")]
    summary = {
        "victim_ratio": min(limited) if limited else None,
        "target": f">= {TARGET} (victim TCP during the flood / without it, every limited variant)",
        "holds": bool(limited) and min(limited) >= TARGET,
        "ratios": ratios,
    }
    print(json.dumps({"seconds": seconds, "rounds": rounds, "flood_rates": rates,
                      "limits": DEFAULT_LIMITS.as_dict(), "summary": summary, **results},
                     indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
