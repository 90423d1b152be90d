"""Per-packet cost of the PA side's pure core (no sockets): receive and send.

Prints one JSON object: nanoseconds per frame to classify a received VXLAN frame
(tagged and untagged) into a tunnel frame, and to address an outer packet to a
resolved next hop. ``--smoke`` runs a tiny count.
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import json
import sys
import time
from collections.abc import Callable

from openhnv.packet.arp import ARP_REPLY
from openhnv.packet.ethernet import ETHERNET_HEADER_LEN, push_vlan
from openhnv.packet.frames import arp_frame, vxlan_encapsulate
from openhnv.vswitch.uplink import ProviderStack, UplinkConfig

MAC = bytes.fromhex("020000000a00")
PEER = bytes.fromhex("020000000b00")
PA = ipaddress.IPv4Address("192.168.2.20")
PEER_PA = ipaddress.IPv4Address("192.168.2.30")


def stack(vlan: int) -> ProviderStack:
    config = UplinkConfig("up0", MAC, ipaddress.IPv4Interface(f"{PA}/24"), vlan, None)
    return ProviderStack([config])


def vxlan_frame(vlan: int, inner: int = 64) -> bytes:
    """A VXLAN frame from the peer PA to ours (VNI 5001, ``inner`` zero bytes inside)."""
    return vxlan_encapsulate(
        bytes(inner), outer_src_mac=PEER, outer_dst_mac=MAC, src_pa=PEER_PA.packed,
        dst_pa=PA.packed, vni=5001, src_port=50000, vlan_id=vlan or None,
    )  # fmt: skip


def per_frame_ns(count: int, run: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    for _ in range(count):
        run()
    return round((time.perf_counter_ns() - start) / count, 1)


def measure(vlan: int, count: int) -> dict[str, float]:
    s = stack(vlan)
    frame = vxlan_frame(vlan)
    rx = per_frame_ns(count, functools.partial(s.receive, 0, frame, 0.0))
    if s.counters["rx_vxlan"] != count:
        raise SystemExit(f"bench: {s.counters['rx_vxlan']} of {count} frames classified")
    # Resolve the peer once, then time sending to a known next hop.
    packet = vxlan_frame(0)[ETHERNET_HEADER_LEN:]
    s.send_ip(0, packet, 0.0)
    reply = arp_frame(
        op=ARP_REPLY, src_mac=PEER, dst_mac=MAC, sender_mac=PEER, sender_ip=PEER_PA.packed,
        target_mac=MAC, target_ip=PA.packed,
    )  # fmt: skip
    s.receive(0, push_vlan(reply, vlan) if vlan else reply, 0.0)
    tx = per_frame_ns(count, functools.partial(s.send_ip, 0, packet, 0.0))
    return {f"rx_vxlan_ns_vlan{vlan}": rx, f"tx_resolved_ns_vlan{vlan}": tx}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true")
    count = 2_000 if parser.parse_args().smoke else 300_000
    result: dict[str, object] = {"frames": count}
    for vlan in (0, 20):
        result.update(measure(vlan, count))
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
