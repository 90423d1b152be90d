"""A hostile VM for tests and benchmarks: a SYN flood from random sources and ports, and
broadcast and ARP floods, sent from inside a VM namespace (never from the root one).

``python3 -m openhnv.testing.flood --interface eth0 --src-mac M --src-ip A --dst-mac M
--dst-ip A [--syn-pps N --broadcast-pps N --arp-pps N --spoof 0.5 --seconds S]`` runs
inside the VM's namespace (``ip netns exec``): the transmit ring of an AF_PACKET socket
on the VM's NIC (``PacketRing``) sends hand-built frames (struct only, valid checksums):

- TCP SYNs to ``dst-ip`` (a VM of the lab), each on a new 5-tuple: the source port and
  the destination port change with every frame, and a ``spoof`` fraction of them carry a
  source address of the VM's subnet that is not its own;
- UDP broadcasts (``ff:ff:ff:ff:ff:ff``, the subnet's broadcast address, port 9);
- ARP requests for the addresses of the VM's /24, broadcast.

Each kind is paced to its rate (0: none of it) in slots of ``SLOT`` seconds; a rate the
process cannot reach is sent as fast as it can. The SYNs are made before the flood
starts (``--pool`` of them, by default enough for ``POOL_SECONDS`` of the rate, each a new
5-tuple; cycled after that), so that sending costs the generator little more than its
system calls: on the shared cores of the lab the generator stands for a VM whose vCPUs
are its own. It stops after ``seconds`` or on SIGTERM and prints what it sent (and its
CPU seconds while sending) as one JSON line. ``Flood`` runs it as a child process
(stopped by its PID) and reads that line.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from openhnv.lab import daemons
from openhnv.vswitch.ring import PacketRing

SLOT = 0.002  # seconds between pacing decisions
SLOT_FRAMES = 512  # at most this many frames of a kind a slot (the ring holds 1024)
RX_FRAMES = 32  # the generator reads nothing: the smallest receive ring
BROADCAST_MAC = b"\xff" * 6
TCP_SYN_FLAG = 0x02
WINDOW = 1024
FIRST_PORT = 1024
PORTS = 60_000
DISCARD_PORT = 9
MODULE = "openhnv.testing.flood"
POOL_SECONDS = 30.0
MAX_POOL = 2_000_000
_IP_HEADER = struct.Struct("!BBHHHBBH4s4s")
_SYN = struct.Struct("!BBHHHBBH4s4sHHIIBBHHH")  # IPv4 + TCP headers of a SYN
_UDP_HEADER = struct.Struct("!HHHH")
_ETH_IPV4 = b"\x08\x00"
_ETH_ARP = b"\x08\x06"


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    return ~_fold(total) & 0xFFFF


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _ipv4(src: bytes, dst: bytes, proto: int, payload: bytes) -> bytes:
    head = _IP_HEADER.pack(0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0, src, dst)
    return head[:10] + struct.pack("!H", checksum(head)) + head[12:] + payload


@dataclass(frozen=True, slots=True)
class Endpoints:
    src_mac: bytes
    src_ip: bytes
    dst_mac: bytes
    dst_ip: bytes


class SynFactory:
    """SYN frames on a new 5-tuple each; checksums from sums precomputed once."""

    def __init__(self, ends: Endpoints, spoof: float) -> None:
        self.ends = ends
        self.spoof_every = round(1 / spoof) if spoof > 0 else 0
        net = int.from_bytes(ends.src_ip, "big") & 0xFFFFFF00
        own = ends.src_ip[3]
        self.spoofed = [(net | h).to_bytes(4, "big") for h in range(2, 254) if h != own]
        self.head = ends.dst_mac + ends.src_mac + _ETH_IPV4
        dst = _words(ends.dst_ip)
        # the IP header's words without the source; the TCP checksum's without the
        # source, the ports and the sequence number (pseudo header + fixed fields)
        self.ip_sum = 0x4500 + 40 + (64 << 8 | socket.IPPROTO_TCP) + dst
        self.tcp_sum = dst + socket.IPPROTO_TCP + 20 + (0x50 << 8 | TCP_SYN_FLAG) + WINDOW
        self.n = 0

    def next(self) -> bytes:
        n = self.n = self.n + 1
        spoofed = self.spoof_every and n % self.spoof_every == 0
        src = self.spoofed[n % len(self.spoofed)] if spoofed else self.ends.src_ip
        sport = FIRST_PORT + n % PORTS
        dport = 1 + (n // PORTS) % PORTS
        seq = n & 0xFFFFFFFF
        s = _words(src)
        ip_csum = ~_fold(self.ip_sum + s) & 0xFFFF
        tcp_csum = ~_fold(self.tcp_sum + s + sport + dport + (seq >> 16) + (seq & 0xFFFF)) & 0xFFFF
        return self.head + _SYN.pack(
            0x45, 0, 40, 0, 0, 64, socket.IPPROTO_TCP, ip_csum, src, self.ends.dst_ip,
            sport, dport, seq, 0, 0x50, TCP_SYN_FLAG, WINDOW, tcp_csum, 0,
        )  # fmt: skip


def _words(address: bytes) -> int:
    value = int.from_bytes(address, "big")
    return (value >> 16) + (value & 0xFFFF)


def broadcast_frame(ends: Endpoints) -> bytes:
    subnet = ipaddress.IPv4Network((int.from_bytes(ends.src_ip, "big"), 24), strict=False)
    payload = b"flood"
    udp = _UDP_HEADER.pack(DISCARD_PORT, DISCARD_PORT, 8 + len(payload), 0) + payload
    ip = _ipv4(ends.src_ip, subnet.broadcast_address.packed, socket.IPPROTO_UDP, udp)
    return BROADCAST_MAC + ends.src_mac + _ETH_IPV4 + ip


def arp_frames(ends: Endpoints) -> list[bytes]:
    base = ends.src_ip[:3]
    frames = []
    for host in range(1, 255):
        body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + ends.src_mac + ends.src_ip
        body += bytes(6) + base + bytes([host])
        frames.append(BROADCAST_MAC + ends.src_mac + _ETH_ARP + body)
    return frames


class Sender:
    """Paces each kind to its rate through a ``PacketRing``'s transmit ring (one system
    call a slot); counts what it queued and what the ring refused."""

    def __init__(self, ring: PacketRing, ends: Endpoints, rates: dict[str, float],
                 spoof: float, pool: int) -> None:  # fmt: skip
        self.ring = ring
        self.rates = rates
        self.sent = dict.fromkeys(rates, 0)
        factory = SynFactory(ends, spoof)
        arps = arp_frames(ends)
        self.frames = {
            "syn": [factory.next() for _ in range(max(1, pool))],
            "broadcast": [broadcast_frame(ends)],
            "arp": arps,
        }

    def run(self, seconds: float, stopping: list[bool]) -> float:
        began = time.monotonic()
        end = began + seconds
        ring = self.ring
        while not stopping and (now := time.monotonic()) < end:
            elapsed = now - began
            for kind, rate in self.rates.items():
                due = min(int(rate * elapsed) - self.sent[kind], SLOT_FRAMES)
                if due <= 0:
                    continue
                frames = self.frames[kind]
                first = self.sent[kind] % len(frames)
                batch = frames[first : first + due]
                while len(batch) < due:  # the pool wraps around
                    batch += frames[: due - len(batch)]
                ring.queue_many(batch)
                self.sent[kind] += due
            ring.flush()
            ahead = SLOT - (time.monotonic() - now)
            if ahead > 0:
                time.sleep(ahead)
        return time.monotonic() - began

    @property
    def refused(self) -> int:
        return self.ring.tx_dropped


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interface", default="eth0")
    parser.add_argument("--src-mac", required=True)
    parser.add_argument("--src-ip", required=True)
    parser.add_argument("--dst-mac", required=True)
    parser.add_argument("--dst-ip", required=True)
    parser.add_argument("--syn-pps", type=float, default=20_000.0)
    parser.add_argument("--broadcast-pps", type=float, default=2_000.0)
    parser.add_argument("--arp-pps", type=float, default=1_000.0)
    parser.add_argument("--spoof", type=float, default=0.5, help="fraction of spoofed SYNs")
    parser.add_argument("--seconds", type=float, default=3600.0)
    parser.add_argument("--pool", type=int, default=0, help="SYNs made in advance")
    args = parser.parse_args(argv)
    ends = Endpoints(
        bytes.fromhex(args.src_mac.replace(":", "")), ipaddress.IPv4Address(args.src_ip).packed,
        bytes.fromhex(args.dst_mac.replace(":", "")), ipaddress.IPv4Address(args.dst_ip).packed,
    )  # fmt: skip
    rates = {"syn": args.syn_pps, "broadcast": args.broadcast_pps, "arp": args.arp_pps}
    stopping: list[bool] = []

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        stopping.append(True)

    signal.signal(signal.SIGTERM, on_term)
    with PacketRing(args.interface, rx_frames=RX_FRAMES) as ring:
        pool = args.pool or min(MAX_POOL, round(args.syn_pps * min(args.seconds, POOL_SECONDS)))
        sender = Sender(ring, ends, {k: v for k, v in rates.items() if v > 0}, args.spoof, pool)
        print("sending", flush=True)
        cpu = time.process_time()
        took = sender.run(args.seconds, stopping)
        cpu = time.process_time() - cpu
    pps = {k: round(v / took) for k, v in sender.sent.items()} if took else {}
    report = {"seconds": round(took, 3), "sent": sender.sent, "refused": sender.refused, "pps": pps,
              "cpu_s": round(cpu, 3)}  # fmt: skip
    print(json.dumps(report), flush=True)
    return 0


class Flood:
    """The flood as a child process inside VM namespace ``namespace`` (a context manager:
        started on enter, stopped by its PID on exit; ``report`` is what it sent, and the CPU
    seconds it took while sending)."""

    def __init__(
        self, namespace: str, ends: dict[str, str], *, nice: int = 0, **options: float | str
    ) -> None:
        """``options``: the command line's (``syn_pps``, ``interface`` ...); ``nice``: the
        generator's niceness (``nice -n``; 0: as its parent)."""
        argv = ["nice", "-n", str(nice)] if nice else []
        argv += ["ip", "netns", "exec", namespace, sys.executable, "-m", MODULE]
        argv += [f"--{k.replace('_', '-')}={v}" for k, v in {**ends, **options}.items()]
        self.argv = argv
        self.process: subprocess.Popen[str] | None = None
        self.report: dict[str, Any] = {}

    def __enter__(self) -> Flood:
        self.process = subprocess.Popen(self.argv, stdout=subprocess.PIPE, text=True,
                                        env=daemons.python_env())  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != "sending":
            self.stop()
            raise RuntimeError(f"the flood did not start: {line!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            out, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
        lines = [x for x in out.splitlines() if x.startswith("{")]
        self.report = json.loads(lines[-1]) if lines else {}
        self.process = None


if __name__ == "__main__":
    sys.exit(main())
