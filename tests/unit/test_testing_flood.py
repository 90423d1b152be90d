"""The hostile VM's frames: each SYN a new 5-tuple with valid checksums (scapy parses)."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether

from openhnv.testing.flood import Endpoints, SynFactory, arp_frames, broadcast_frame

ENDS = Endpoints(bytes.fromhex("020000000113"), bytes([10, 0, 0, 13]),
                 bytes.fromhex("020000000112"), bytes([10, 0, 0, 12]))  # fmt: skip


def valid(frame: bytes) -> Ether:
    """The parsed frame, after checking that scapy computes the same checksums."""
    parsed = Ether(frame)
    again = Ether(frame)
    del again[IP].chksum
    if TCP in again:
        del again[TCP].chksum
    rebuilt = Ether(bytes(again))
    assert rebuilt[IP].chksum == parsed[IP].chksum
    if TCP in parsed:
        assert rebuilt[TCP].chksum == parsed[TCP].chksum
    else:
        assert parsed[UDP].chksum == 0  # none, as IPv4 allows
    return parsed


def test_each_syn_is_a_new_flow_some_from_spoofed_sources() -> None:
    factory = SynFactory(ENDS, spoof=0.25)
    frames = [valid(factory.next()) for _ in range(400)]
    tuples = {(f[IP].src, f[TCP].sport, f[TCP].dport) for f in frames}
    assert len(tuples) == 400
    assert all(f[TCP].flags == "S" and f[IP].dst == "10.0.0.12" for f in frames)
    assert all(f.dst == "02:00:00:00:01:12" and f.src == "02:00:00:00:01:13" for f in frames)
    spoofed = [f for f in frames if f[IP].src != "10.0.0.13"]
    assert len(spoofed) == 100
    assert all(f[IP].src.startswith("10.0.0.") for f in spoofed)


def test_broadcast_and_arp_frames_go_to_the_broadcast_mac() -> None:
    bcast = valid(broadcast_frame(ENDS))
    assert (bcast.dst, bcast[IP].dst, bcast[UDP].dport) == ("ff:ff:ff:ff:ff:ff", "10.0.0.255", 9)
    arps = [Ether(f) for f in arp_frames(ENDS)]
    assert len(arps) == 254
    assert all(a.dst == "ff:ff:ff:ff:ff:ff" and a[ARP].op == 1 for a in arps)
    assert {a[ARP].psrc for a in arps} == {"10.0.0.13"}
