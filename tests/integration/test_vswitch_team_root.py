"""Team failover on a lab fabric: a member loses carrier, its PA moves, TCP goes on.

Each host has two team members (up0, up1), each with a PA; the VMs' mappings name
h1's up0 PA. A TCP stream of numbered ticks runs from v1 (h1) to v2 (h2) while the
cable of h1's up0 is pulled (the fabric side of its veth goes down) and put back. The
stream must resume (gap bound generous: the issue asks within 1 s, bench/failover.py
reports the figure), the connection must survive with every tick in order, and the
moved PA's frames must leave by up1 with their own source address and MAC. Runs on the
data path ``HNV_TEST_FASTPATH`` asks for (the kernel fast path, or Python only).
Namespaces ``hnv-lx…``, removed afterwards even on failure.
"""

from __future__ import annotations

import selectors
import time
from pathlib import Path

import pytest
from scapy.layers.inet import IP
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN

from openhnv.lab import netns
from openhnv.testing.dataplane import DataplaneLab, document, lab_name
from openhnv.testing.failover import TickStream, failover_round, pull_cable, start_team_hosts
from openhnv.testing.polling import eventually
from openhnv.vswitch.afpacket import AfPacketSocket

pytestmark = [pytest.mark.root, pytest.mark.datapath]

GAP_BOUND = 3.0
"""Seconds: generous (2 shared cores); the issue's 1 s is measured by bench/failover.py."""
CAPTURE_SECONDS = 0.5


def frames_on(sock: AfPacketSocket, seconds: float = CAPTURE_SECONDS) -> list[Ether]:
    frames: list[bytes] = []
    deadline = time.monotonic() + seconds
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(0.05):
                frames += sock.recv_batch(1024)
    return [Ether(f) for f in frames]


def test_a_pulled_member_hands_its_pa_over_and_tcp_survives(tmp_path: Path) -> None:
    with DataplaneLab(document(lab_name("tm"), uplinks=2), tmp_path) as lab:
        start_team_hosts(lab)
        s1 = lab.switches["h1"]
        pa, mac0 = lab.pa("h1"), s1.driver.uplink_mac("up0")
        tap = netns.run_in(lab.names.fabric, AfPacketSocket, lab.names.uplink_peer("h1", 1))
        stream = TickStream(lab, "v1", "v2")
        try:
            result = failover_round(lab, stream)
            print(f"\nteam failover ({lab.fastpath}): gap {result.down_gap * 1000:.0f} ms down,"
                  f" {result.up_gap * 1000:.0f} ms back up")  # fmt: skip
            assert stream.error is None, stream.error
            assert result.down_gap < GAP_BOUND
            assert result.up_gap < GAP_BOUND
            assert result.received > 0
            status = s1.fastpath_status()
            if status["state"] == "on":  # the stream's entry was rewritten, not left to die
                edge = status["edge"]
                assert isinstance(edge, dict)
                assert edge["entries_rehomed"] >= 2  # to up1 and back to up0

            # while up0 is out, the PA's frames leave by up1, as themselves
            tap.recv_batch(4096)
            pulled = time.monotonic()
            pull_cable(lab, "h1", 0, "fabric", up=False)
            eventually(lambda: s1.placement()[pa].member == "up1", "PA moved to up1")
            eventually(lambda: stream.steady(pulled), "stream resumed")
            seen = frames_on(tap)
            garps = [f for f in seen if f.haslayer(ARP) and f[ARP].psrc == f[ARP].pdst == pa]
            tunnel = [f for f in seen if f.haslayer(VXLAN) and f[IP].src == pa]
            assert tunnel, "the moved PA's VXLAN frames leave by up1"
            assert all(f[Ether].src == mac0 for f in tunnel), "with the PA's own MAC"
            assert garps, "a gratuitous ARP for the PA from up1 teaches the fabric"
            assert s1.team_status()["members"] == {"up0": "down", "up1": "up"}
            back = time.monotonic()
            pull_cable(lab, "h1", 0, "fabric", up=True)
            eventually(lambda: not s1.placement()[pa].moved, "PA back home on up0")
            eventually(lambda: stream.steady(back), "stream resumed")
            assert stream.error is None, stream.error
        finally:
            stream.close()
            tap.close()
