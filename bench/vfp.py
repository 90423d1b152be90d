"""Benchmark of the VFP engine: fast path, slow path by rule count, setups, memory.

Prints one JSON object. ``--smoke`` runs tiny counts in a few seconds. Figures are
nanoseconds per packet (best and median of several rounds: the machine is shared), flow
setups per second, bytes per unified-flow-table entry and the resident memory of one
port holding the flows.
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import platform
import resource
import statistics
import struct
import sys
import time
from collections.abc import Sequence

from openhnv.packet.addresses import mac_to_bytes
from openhnv.packet.ethernet import ETHERTYPE_IPV4, Ethernet
from openhnv.packet.ipv4 import PROTO_UDP, IPv4
from openhnv.packet.udp import UDP, UDP_HEADER_LEN, UDP_LENGTH_AT, UDP_NO_CHECKSUM
from openhnv.vfp import commands as c
from openhnv.vfp.emits import UPLINK, Transmit
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.layout import ACL_NIC, hnv_port_commands
from openhnv.vfp.policy import OUT, Block, Direction, Rule, conditions
from openhnv.vfp.spaces import Mapping, ProviderAddress

PA_A, PA_B = "192.168.1.10", "192.168.1.20"
MAC_A, MAC_B = "02:00:00:00:0a:01", "02:00:00:00:0b:01"
ROUTER = "40:1d:d8:b7:1c:06"
RDID = "rdid-bench"
VM1 = ("vm1", "00:1d:d8:00:00:01", "10.1.1.11", PA_A)
VM2 = ("vm2", "00:1d:d8:00:00:02", "10.1.1.12", PA_B)
BATCH = 256
TARGETS = {
    "fast_path_encap_ns_per_packet": "<= 1000",
    "fast_vs_slow_at_1k_rules": ">= 30",
    "slow_100k_vs_10_rules": "<= 20",
    "bytes_per_uft_entry": "<= 400",
    "flows_in_one_port": ">= 1000000",
}


def udp_frames(count: int, start: int = 0, payload: bytes = b"x" * 18) -> list[bytes]:
    """``count`` UDP frames VM1 -> VM2, one flow each (ports vary; UDP checksum 0: none).

    The Ethernet and IPv4 headers are built once with the packet codecs; each frame only
    packs its ports (a million frames are made for the memory figure).
    """
    src, dst = ipaddress.IPv4Address(VM1[2]).packed, ipaddress.IPv4Address(VM2[2]).packed
    udp_length = UDP_HEADER_LEN + len(payload)
    ethernet = Ethernet(mac_to_bytes(VM2[1]), mac_to_bytes(VM1[1]), ETHERTYPE_IPV4).pack()
    head = ethernet + IPv4(src, dst, PROTO_UDP).pack(udp_length)
    tail = UDP.pack(0, 0, udp_length, UDP_NO_CHECKSUM)[UDP_LENGTH_AT:] + payload
    ports = struct.Struct("!HH").pack
    out = []
    for i in range(start, start + count):
        sport, dport = 1024 + i % 60000, 1 + i // 60000
        out.append(head + ports(sport, dport) + tail)
    return out


def switch(
    pa: str, pa_mac: str, *, capacity: int, acl: Sequence[tuple[Direction, Rule]] = ()
) -> VfpEngine:
    sw = VfpEngine(flow_capacity=capacity, idle_timeout=3600.0, clock=lambda: 0.0)
    sw.programming.apply(c.AddProviderAddress(ProviderAddress(pa, pa_mac, 24)))
    sw.programming.apply(
        c.SetPaNeighbor(PA_B if pa == PA_A else PA_A, MAC_B if pa == PA_A else MAC_A)
    )
    for name, mac, ip, vm_pa in (VM1, VM2):
        sw.programming.apply(c.AddMapping(Mapping(RDID, ip, vm_pa, mac, 5001)))
        if vm_pa == pa:
            port = c.AddPort(name, mac, 5001, RDID, (ip,))
            sw.programming.apply_all(
                hnv_port_commands(
                    port, router_mac=ROUTER, vnet_prefixes=["10.1.0.0/16"], nic_acl=acl
                )
            )
    return sw


def acl_rules(n: int) -> list[tuple[Direction, Rule]]:
    """``n`` outbound deny rules of a realistic mix that the benchmark traffic never hits."""
    rules: list[tuple[Direction, Rule]] = []
    for i in range(n):
        net = ipaddress.IPv4Address(int(ipaddress.IPv4Address("172.16.0.0")) + i * 4)
        kind = i % 4
        if kind == 0:
            cond = conditions(protocols=[6], dst_prefixes=[f"{net}/30"], dst_ports=[i % 1000 + 1])
        elif kind == 1:
            cond = conditions(protocols=[17], dst_prefixes=[f"{net}/32"], dst_ports=[(2000, 3000)])
        elif kind == 2:
            cond = conditions(src_prefixes=[f"{net}/30"], protocols=[6, 17])
        else:
            cond = conditions(dst_prefixes=[f"{net}/30"], src_ports=[i % 5000 + 1])
        rules.append((OUT, Rule(f"deny-{i}", 100 + i, cond, Block())))
    return rules


def timed_rounds(fn: object, rounds: int, per_round: int) -> dict[str, float]:
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - t0) * 1e9 / per_round)
    return {"best": round(min(samples), 1), "median": round(statistics.median(samples), 1)}


def fast_paths(flows: int, rounds: int, repeat: int) -> tuple[dict[str, float], dict[str, float]]:
    a = switch(PA_A, MAC_A, capacity=flows * 2)
    b = switch(PA_B, MAC_B, capacity=flows * 2)
    frames = udp_frames(flows)
    batches = [frames[i : i + BATCH] for i in range(0, len(frames), BATCH)]
    tx: list[list[bytes]] = []
    for batch in batches:  # set the flows up
        tx.append([e.frame for e in a.process_batch("vm1", batch, 0.0) if isinstance(e, Transmit)])
    for batch in tx:
        b.process_batch(UPLINK, batch, 0.0)
    if sum(map(len, tx)) != flows:
        raise SystemExit("bench: the encapsulation set-up did not transmit every flow")

    def encap() -> None:
        for _ in range(repeat):
            for batch in batches:
                a.process_batch("vm1", batch, 0.0)

    def decap() -> None:
        for _ in range(repeat):
            for batch in tx:
                b.process_batch(UPLINK, batch, 0.0)

    return timed_rounds(encap, rounds, flows * repeat), timed_rounds(decap, rounds, flows * repeat)


def slow_path(rule_count: int, packets: int, rounds: int) -> dict[str, float]:
    """ns per packet of the first packets of new flows through ``rule_count`` ACL rules."""
    a = switch(PA_A, MAC_A, capacity=packets * (rounds + 1) + 10, acl=acl_rules(rule_count))
    group_rules = len(a.listing.rules("vm1", ACL_NIC, "out-v4"))
    if group_rules < rule_count:
        raise SystemExit(f"bench: only {group_rules} rules programmed")
    a.process_batch("vm1", udp_frames(1, 10**6), 0.0)  # build the index once
    sets = [udp_frames(packets, r * packets) for r in range(rounds)]
    it = iter(sets)
    result = timed_rounds(lambda: a.process_batch("vm1", next(it), 0.0), rounds, packets)
    if a.listing.counters("vm1").get("drop:acl_deny", 0):
        raise SystemExit("bench: the slow-path traffic hit a deny rule")
    return result


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def memory(flows: int) -> dict[str, float]:
    """Fill one port with ``flows`` flows, each seen twice (so that its outer headers are
    cached, as in steady state); RSS and bytes per UFT entry."""
    a = switch(PA_A, MAC_A, capacity=flows)
    gc.collect()
    before = rss_bytes()
    chunk = 50_000
    elapsed = 0.0
    for second_pass in (False, True):  # the second packet of every flow fills its header
        for start in range(0, flows, chunk):
            frames = udp_frames(min(chunk, flows - start), start)
            t0 = time.perf_counter()
            for i in range(0, len(frames), BATCH):
                a.process_batch("vm1", frames[i : i + BATCH], 0.0)
            if not second_pass:
                elapsed += time.perf_counter() - t0
    del frames
    gc.collect()
    held = a.listing.counters("vm1")["flows"]
    after = rss_bytes()
    return {
        "flows_held": held,
        "flow_table_full_drops": a.listing.counters("vm1").get("drop:flow_table_full", 0),
        "rss_bytes": after,
        "bytes_per_uft_entry": round((after - before) / max(held, 1), 1),
        "flow_setups_per_second": round(held / elapsed),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny counts, a few seconds")
    args = parser.parse_args(argv)
    smoke = args.smoke
    rule_counts = [10, 100] if smoke else [10, 1_000, 10_000, 100_000]
    flows = 512 if smoke else 4096
    encap, decap = fast_paths(flows, 3 if smoke else 7, 1 if smoke else 4)
    slow = {}
    for n in rule_counts:
        print(f"slow path at {n} rules", file=sys.stderr)
        slow[str(n)] = slow_path(n, 200 if smoke else 2000, 3 if smoke else 5)
    print("memory", file=sys.stderr)
    mem = memory(2000 if smoke else 1_000_000)
    ref = slow.get("1000", slow[str(rule_counts[-1])])
    result = {
        "python": platform.python_version(),
        "smoke": smoke,
        "batch": BATCH,
        "fast_path_encap_ns_per_packet": encap,
        "fast_path_decap_ns_per_packet": decap,
        "slow_path_ns_per_packet": slow,
        "fast_vs_slow_at_1k_rules": {k: round(ref[k] / encap[k], 1) for k in ("best", "median")},
        "slow_100k_vs_10_rules": {
            k: round(slow[str(rule_counts[-1])][k] / slow[str(rule_counts[0])][k], 2)
            for k in ("best", "median")
        },
        "flow_setups_per_second": mem["flow_setups_per_second"],
        "bytes_per_uft_entry": mem["bytes_per_uft_entry"],
        "memory": mem,
        "targets": TARGETS,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
