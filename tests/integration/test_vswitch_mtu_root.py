"""MTU: a VM's full frame over an underlay that cannot carry it encapsulated.

A lab whose physical links have MTU 1500 (``DataplaneLab(underlay_mtu=1500)``), VMs
with MTU 1500: a full 1514-byte frame would need 1564 bytes on the wire. The switch
drops it (``drop:mtu_exceeded``) and answers the VM with ICMP "fragmentation needed"
(next-hop MTU 1450, RFC 1191); the VM's TCP then completes through path MTU
discovery. With the kernel fast path (``HNV_TEST_FASTPATH``), the kernel misses such
frames (``miss_mtu``) so that they reach the slow path that answers them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_vswitch_linux_root import EchoServer, tcp_echo

from openhnv.lab import netns
from openhnv.testing.dataplane import DataplaneLab, document, lab_name, port_id, wait_ready

pytestmark = [pytest.mark.root, pytest.mark.datapath]

UNDERLAY_MTU = 1500
NEXT_HOP_MTU = UNDERLAY_MTU - 50  # VXLAN's outer Ethernet, IPv4, UDP and VXLAN headers


def test_a_full_frame_over_a_1500_underlay_gets_frag_needed_and_tcp_completes(
    tmp_path: Path,
) -> None:
    doc = document(lab_name("mt"))
    with DataplaneLab(doc, tmp_path, underlay_mtu=UNDERLAY_MTU) as lab:
        s1, s2 = lab.start_switch("h1"), lab.start_switch("h2")
        wait_ready(s1, 1, [lab.pa("h2")])
        wait_ready(s2, 1, [lab.pa("h1")])
        v1 = lab.vm_ns("v1")
        ping = ["ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1472", lab.vm_ip("v2")]
        too_big = netns.exec_in(v1, ping, check=False)  # 1500 bytes of IP, DF set
        assert too_big.returncode != 0
        said = (too_big.stdout + too_big.stderr).replace(" ", "")  # "mtu = 1450" or "mtu=1450"
        assert f"mtu={NEXT_HOP_MTU}" in said
        server = EchoServer(lab, "v2")
        try:
            tcp_echo(lab, "v1", lab.vm_ip("v2"), 300_000)  # completes: PMTU discovery
        finally:
            server.close()
        route = netns.exec_in(v1, ["ip", "route", "get", lab.vm_ip("v2")]).stdout
        assert f"mtu {NEXT_HOP_MTU}" in route
        counters = s1.inspect(lambda e: e.listing.counters(port_id("v1")))
        assert counters["drop:mtu_exceeded"] >= 1
        assert counters["frag_needed_sent"] >= 1
        fits = ["ping", "-c", "1", "-W", "2", "-M", "do", "-s", str(NEXT_HOP_MTU - 28),
                lab.vm_ip("v2")]  # fmt: skip
        assert netns.exec_in(v1, fits, check=False).returncode == 0
