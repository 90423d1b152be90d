"""VM to VM across two hosts: the kernel fast path (hand-installed entries) against a
Linux bridge + VXLAN device pair, VM offloads on, in the same run.

Two nets from ``openhnv.testing.fastpath_net`` (hosts h1, h2 on one uplink veth,
VM v1 on h1 and v2 on h2, MTU 1500 in the VMs and 1600 underneath):

- ``fastpath``: both hosts run ``FastPath`` with entries installed by hand for v1's
  narrowed ephemeral ports (TCP and UDP, both directions), and the tests' ``SlowPath``
  forwards what the kernel leaves (SYN, FIN, RST);
- ``kernel_vxlan``: both hosts are a Linux bridge with the VM port and a VXLAN device
  (VNI 5001, static FDB).

Each of ``--repeat`` rounds runs iperf3 TCP and UDP-64 (18-byte payload, unlimited
rate, packets received per second) on both, in an order rotated per round; figures
are medians. Prints one JSON object with the ratios fast path / kernel. Needs root;
``--smoke`` runs one-second tests once.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

from openhnv.testing.fastpath_net import (
    CLIENT_PORTS,
    IPERF_PORT,
    FastpathNet,
    SlowPath,
    iperf,
    narrow_ports,
    tcp_gbit_s,
    udp_received_pkt_s,
)
from openhnv.testing.privileges import root_missing
from openhnv.vswitch.fastpath.probe import probe

VMS = (("v1", "h1"), ("v2", "h2"))


def fast_path_net(stack: ExitStack) -> tuple[FastpathNet, list[SlowPath]]:
    net = stack.enter_context(FastpathNet("bf", vms=VMS))
    net.load("h1")
    net.load("h2")
    slow = [SlowPath(net, "h1"), SlowPath(net, "h2")]
    narrow_ports(net, "v1")
    net.install_connections("v1", "v2", CLIENT_PORTS, IPERF_PORT)
    return net, slow


def kernel_net(stack: ExitStack) -> FastpathNet:
    net = stack.enter_context(FastpathNet("bk", vms=VMS))
    net.kernel_vxlan("h1")
    net.kernel_vxlan("h2")
    return net


def one_round(net: FastpathNet, seconds: float) -> dict[str, float]:
    tcp = iperf(net, "v1", "v2", seconds)
    udp = iperf(net, "v1", "v2", seconds, udp=True)
    return {"tcp_gbit_s": tcp_gbit_s(tcp), "udp64_received_pkt_s": udp_received_pkt_s(udp)}


def median(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one-second tests, once")
    parser.add_argument("--seconds", type=float, default=5.0, help="per iperf3 run")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (medians)")
    args = parser.parse_args(argv)
    missing = root_missing()
    if missing is not None:
        print(json.dumps({"skipped": missing}))
        return 0
    why_not = probe()
    if why_not is not None:
        print(json.dumps({"skipped": why_not}))
        return 0
    seconds = 1.0 if args.smoke else args.seconds
    repeat = 1 if args.smoke else max(1, args.repeat)
    with ExitStack() as stack:
        fast, slow = fast_path_net(stack)
        kernel = kernel_net(stack)
        subjects = [("fastpath", fast), ("kernel_vxlan", kernel)]
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name, _ in subjects}
        for i in range(repeat):
            for name, net in subjects[i % 2 :] + subjects[: i % 2]:
                rounds[name].append(one_round(net, seconds))
        counters = {h: fast.fast_paths[h].counters.read() for h in ("h1", "h2")}
        slow_frames = sum(sum(s.counters.values()) for s in slow)
    ours, theirs = median(rounds["fastpath"]), median(rounds["kernel_vxlan"])
    result: dict[str, Any] = {
        "seconds": seconds,
        "repeat": repeat,
        "vm_offloads": "on",
        "openhnv_fastpath": {
            **ours,
            "kernel_hits": sum(c["hit_encap"] + c["hit_decap"] for c in counters.values()),
            "kernel_misses": sum(
                v for c in counters.values() for k, v in c.items() if k.startswith("miss_")
            ),
            "slow_path_frames": slow_frames,
        },
        "kernel_vxlan_offloads_on": theirs,
        "ratio_fastpath_tcp_offloads_on": round(ours["tcp_gbit_s"] / theirs["tcp_gbit_s"], 3),
        "ratio_fastpath_udp64_received": round(
            ours["udp64_received_pkt_s"] / theirs["udp64_received_pkt_s"], 3
        ),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
