"""A hostile VM on a lab host: its SYN, broadcast and ARP floods are dropped and counted
by its port's abuse limits (in its port's socket filter first, then in the engine),
while its neighbour on the same host keeps its connections.

The lab (namespaces ``hnv-lx…``, removed afterwards even on failure) has hosts h1 and h2
running HostSwitch on the Linux driver (fast path as ``HNV_TEST_FASTPATH`` says); v1
(the victim) and v3 (the attacker) on h1, v2 on h2. v3 runs ``openhnv.testing.flood``
inside its namespace toward v2 and its subnet's broadcast address only.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from openhnv.lab import traffic
from openhnv.testing.dataplane import DataplaneLab, document, lab_name, port_id, wait_ready
from openhnv.testing.flood import Flood
from openhnv.testing.polling import eventually
from openhnv.vfp.engine import DEFAULT_IDLE_TIMEOUT
from openhnv.vfp.limits import LIMIT_REASONS, PortLimits
from openhnv.vswitch.fastpath.probe import probe

pytestmark = [pytest.mark.root, pytest.mark.datapath]

SERVICE_PORT = 7010
FLOOD_DROPS = 2000  # SYNs over v3's new-flow rate before the victim's connections
LIMITS = PortLimits(
    max_flows=300, new_flow_rate=400.0, new_flow_burst=400,
    broadcast_rate=50.0, broadcast_burst=50, arp_rate=20.0, arp_burst=20,
)  # fmt: skip


def test_a_flooding_vm_is_limited_and_counted_while_its_neighbour_keeps_working(
    tmp_path: Path,
) -> None:
    doc = document(lab_name("ab"), vms=(("v1", "h1"), ("v2", "h2"), ("v3", "h1")))
    with DataplaneLab(doc, tmp_path, limits=LIMITS) as lab:
        s1, s2 = lab.start_switch("h1"), lab.start_switch("h2")
        wait_ready(s1, 2, [lab.pa("h2")])
        wait_ready(s2, 1, [lab.pa("h1")])
        v2_ip = lab.vm_ip("v2")

        def counters(vm: str) -> dict[str, int]:
            return s1.inspect(lambda e: e.listing.counters(port_id(vm)))

        def limit_drops(vm: str) -> dict[str, int]:
            """Dropped over each limit, by the port's socket filter and by the engine."""
            kernel = s1.kernel_limit_drops().get(port_id(vm), {})
            both = {r: counters(vm).get(f"drop:{r}", 0) + kernel.get(r, 0) for r in LIMIT_REASONS}
            return {r: n for r, n in both.items() if n}

        ends = {"src_mac": str(lab.topology.vm("v3").mac), "src_ip": lab.vm_ip("v3"),
                "dst_mac": str(lab.topology.vm("v2").mac), "dst_ip": v2_ip}  # fmt: skip
        with traffic.TcpResponder(lab.vm_ns("v2"), v2_ip, SERVICE_PORT, b"v2"):
            assert traffic.tcp_answer(lab.vm_ns("v1"), v2_ip, SERVICE_PORT, b"hi") == b"v2"
            with Flood(lab.vm_ns("v3"), ends, syn_pps=4000, broadcast_pps=400, arp_pps=200,
                       spoof=0.5, seconds=120) as flood:  # fmt: skip
                eventually(
                    lambda: (
                        set(limit_drops("v3")) == set(LIMIT_REASONS)
                        and limit_drops("v3")["new_flow_rate"] >= FLOOD_DROPS
                    ),
                    f"every limit of v3 dropping, {FLOOD_DROPS} new flows over its rate",
                )
                answers = [
                    traffic.tcp_answer(lab.vm_ns("v1"), v2_ip, SERVICE_PORT, b"hi")
                    for _ in range(5)
                ]
            assert flood.report["sent"]["syn"] > FLOOD_DROPS, flood.report
            assert answers == [b"v2"] * 5  # the victim kept its new connections
            assert limit_drops("v1") == {}
            held = s1.inspect(lambda e: len(e.state.port(port_id("v3")).outbound))
            assert held <= LIMITS.max_flows  # type: ignore[operator]
            status = s1.limit_status()
            kernel = status["kernel"]
            assert isinstance(status["ports"], dict)
            assert isinstance(kernel, dict)
            assert set(status["ports"]) | set(kernel["ports"]) == {port_id("v3")}
            if probe() is None:  # the object loads here: the socket filter meters, both modes
                assert kernel["state"] == "on", kernel
                in_kernel = s1.kernel_limit_drops()[port_id("v3")]
                # SYNs, broadcasts and ARP over their rates never reached the switch's ring
                assert set(in_kernel) == {"new_flow_rate", "broadcast_rate", "arp_rate"}
                assert in_kernel["new_flow_rate"] >= FLOOD_DROPS // 2, in_kernel
                counted = s1.fastpath_status().get("kernel")  # the fast path's own counters
                if isinstance(counted, dict):
                    assert counted["drop_new_flow_rate"] >= in_kernel["new_flow_rate"]
            # at its flow limit v3 has no new connection (one try of 3 s, in which its stack
            # resolves v2 and sends the SYN again: more tries repeat it); once its flows
            # expire it has
            assert traffic.tcp_answer(lab.vm_ns("v3"), v2_ip, SERVICE_PORT, b"hi", 1) is None
            s1.expire(s1.engine.clock() + DEFAULT_IDLE_TIMEOUT + 1)
            assert traffic.tcp_answer(lab.vm_ns("v3"), v2_ip, SERVICE_PORT, b"hi") == b"v2"
