"""Per-packet cost of the packet layer's codecs (openhnv.packet), in microseconds.

Prints one JSON object: for each operation the median over rounds of the mean time per
call. ``--smoke`` does a tiny run (for ``make test``). Figures are for comparing
changes on one machine, never test bounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence

from openhnv.packet.checksum import internet_checksum
from openhnv.packet.decode import decode, describe
from openhnv.packet.frames import (
    decapsulate,
    nvgre_encapsulate,
    tcp_frame,
    vxlan_encapsulate,
)
from openhnv.packet.ipv4 import PROTO_TCP, IPv4
from openhnv.packet.segment import GSO_TCPV4, segment
from openhnv.packet.tcp import TCP_ACK, TCP_PSH, Tcp
from openhnv.packet.template import TunnelTemplate

OUTER = {
    "outer_src_mac": "02:00:c0:a8:01:0a",
    "outer_dst_mac": "02:00:c0:a8:02:14",
    "src_pa": "192.168.1.10",
    "dst_pa": "192.168.2.20",
}


def per_call_us(operation: Callable[[], object], calls: int, rounds: int) -> float:
    """Median over ``rounds`` of the mean microseconds per call."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            operation()
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return round(statistics.median(samples), 3)


GSO_PAYLOAD = 65536 - 14 - 20 - 32  # the largest TSO frame: 64 KB with its headers
MSS = 1448  # Linux's MSS on a 1500-byte MTU with TCP timestamps


def gso_frame() -> bytes:
    """A 64 KB TCP GSO super-frame (timestamps option, as Linux sends) from a VM."""
    tcp = Tcp(
        40000, 5201, seq=1, ack=1, flags=TCP_PSH | TCP_ACK, options=bytes([1, 1, 8, 10]) + bytes(8)
    )
    src, dst = bytes([10, 1, 1, 12]), bytes([10, 1, 1, 11])
    segment_bytes = tcp.pack(src, dst, bytes(GSO_PAYLOAD))
    ip = IPv4(src, dst, PROTO_TCP).pack(len(segment_bytes))
    return bytes.fromhex("001dd8070001001dd80700020800") + ip + segment_bytes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny run")
    args = parser.parse_args(argv)
    calls, rounds = (50, 1) if args.smoke else (20000, 3)
    inner = tcp_frame(
        src_mac="00:1d:d8:07:00:02",
        dst_mac="00:1d:d8:07:00:01",
        src_ip="10.1.1.12",
        dst_ip="10.1.1.11",
        src_port=40000,
        dst_port=1433,
        flags=TCP_PSH | TCP_ACK,
        payload=bytes(1400),
    )
    src_pa, dst_pa = bytes([192, 168, 1, 10]), bytes([192, 168, 2, 20])
    src_mac = dst_mac = bytes(6)
    vxlan = vxlan_encapsulate(inner, vni=5001, src_port=51234, **OUTER)  # type: ignore[arg-type]
    template = TunnelTemplate.vxlan(vni=5001, **OUTER)  # type: ignore[arg-type]
    gso = gso_frame()
    segments = len(segment(gso, GSO_TCPV4, MSS))
    gso_calls = max(1, calls // 50)
    segment_us = per_call_us(lambda: segment(gso, GSO_TCPV4, MSS), gso_calls, rounds)
    results = {
        "inner_frame_bytes": len(inner),
        "segment_64k_gso_frame_us": segment_us,
        "segment_64k_gso_per_segment_us": round(segment_us / segments, 3),
        "segment_64k_gso_segments": segments,
        "vxlan_encapsulate_us": per_call_us(
            lambda: vxlan_encapsulate(
                inner,
                src_pa=src_pa,
                dst_pa=dst_pa,
                vni=5001,
                src_port=51234,
                outer_src_mac=src_mac,
                outer_dst_mac=dst_mac,
            ),
            calls,
            rounds,
        ),
        "nvgre_encapsulate_us": per_call_us(
            lambda: nvgre_encapsulate(
                inner,
                src_pa=src_pa,
                dst_pa=dst_pa,
                vsid=5001,
                flow_id=0,
                outer_src_mac=src_mac,
                outer_dst_mac=dst_mac,
            ),
            calls,
            rounds,
        ),
        "vxlan_template_encapsulate_us": per_call_us(
            lambda: template.encapsulate(inner, 51234), calls, rounds
        ),
        "decapsulate_us": per_call_us(lambda: decapsulate(vxlan), calls, rounds),
        "decode_vxlan_tcp_us": per_call_us(lambda: decode(vxlan), calls, rounds),
        "describe_us": per_call_us(lambda: describe(vxlan), calls, rounds),
        "checksum_1500_bytes_us": per_call_us(
            lambda: internet_checksum(bytes(1500)), calls, rounds
        ),
        "calls_per_round": calls,
        "rounds": rounds,
    }
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
