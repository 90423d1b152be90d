"""QoS caps in a lab: iperf3 through a capped port stays near its cap, a neighbour does not.

``capped`` (h1) has ``qos: {outbound_max_mbps: 50, inbound_max_mbps: 30}`` in the lab
YAML (so ``portSettings.qosSettings`` through REST, the compiler, OVSDB and the agent);
``free`` is its neighbour on the same host without caps. Each runs iperf3 (TCP, a few
seconds) to a VM on h2 at the same time; then ``capped`` receives (``-R``). The hosts run
the data path ``HNV_TEST_FASTPATH`` asks for: with the fast path the established flows
are the kernel's, whose buckets enforce the caps (bpf/qos.h).

The cap is on the VM's Ethernet frames; iperf3 counts TCP payload, so the frame rate is
the payload rate times (MSS + headers) / MSS.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from lab_running import network, running_lab, subnet, two_hosts, vm

from openhnv.host.control import call
from openhnv.lab import orchestrator
from openhnv.lab.rest import instance_id
from openhnv.testing.datapath_mode import fastpath_mode

pytestmark = [pytest.mark.root, pytest.mark.datapath]

OUTBOUND_MBPS, INBOUND_MBPS = 50, 30
NETWORKS = [network("blue", "10.9.0.0/16", subnet("s", "10.9.1.0/24", vsid=7201))]
VMS = [
    vm("capped", "h1", "10.9.1.10", "blue",
       qos={"outbound_max_mbps": OUTBOUND_MBPS, "inbound_max_mbps": INBOUND_MBPS}),
    vm("free", "h1", "10.9.1.11", "blue"),
    vm("sink-a", "h2", "10.9.1.20", "blue"),
    vm("sink-b", "h2", "10.9.1.21", "blue"),
]  # fmt: skip
SECONDS = 3
OMIT = 1  # the first second is left out: the buckets start full, TCP starts slow
TOLERANCE = 0.10
FRAME_OVERHEAD = 14 + 20 + 32  # Ethernet, IPv4, TCP with timestamps: per segment
PORTS = {"sink-a": 5301, "sink-b": 5302}


@pytest.fixture(scope="module")
def lab() -> Iterator[orchestrator.RunningLab]:
    with running_lab(two_hosts(NETWORKS, VMS)) as running:
        yield running


def _servers(lab: orchestrator.RunningLab) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            ["ip", "netns", "exec", lab.vm_namespace(vm), "iperf3", "-s", "-1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for vm, port in PORTS.items()
    ]


def _client(lab: orchestrator.RunningLab, vm: str, server: str, *extra: str) -> Any:
    address = {"sink-a": "10.9.1.20", "sink-b": "10.9.1.21"}[server]
    argv = ["iperf3", "-c", address, "-p", str(PORTS[server]), "-J", "-t", str(SECONDS),
            "-O", str(OMIT), *extra]  # fmt: skip
    return subprocess.Popen(["ip", "netns", "exec", lab.vm_namespace(vm), *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip


def _frame_mbps(report: dict[str, Any]) -> float:
    """The frame rate (Mbit/s) of an iperf3 TCP report: its payload rate with headers."""
    payload = float(report["end"]["sum_received"]["bits_per_second"]) / 1e6
    mss = int(report["start"].get("tcp_mss_default") or 1448)
    return payload * (mss + FRAME_OVERHEAD) / mss


def _run(lab: orchestrator.RunningLab, *clients: tuple[str, str, tuple[str, ...]]) -> list[Any]:
    """iperf3 from each (vm, server, extra) at once; their JSON reports."""
    servers = _servers(lab)
    try:
        time.sleep(0.5)  # the servers listen
        running = [_client(lab, vm, server, *extra) for vm, server, extra in clients]
        reports = []
        for process in running:
            out, _ = process.communicate(timeout=SECONDS + OMIT + 30)
            report = json.loads(out)
            assert "error" not in report, report["error"]
            reports.append(report)
        return reports
    finally:
        for process in servers:
            if process.poll() is None:
                process.kill()
            process.wait()


def _counters(lab: orchestrator.RunningLab) -> dict[str, int]:
    port = instance_id(lab.nics["capped"])
    counters: dict[str, int] = call(lab.host_state_dir("h1"), "counters", port=port)
    return counters


def test_a_capped_port_stays_within_its_caps_and_its_neighbour_runs_free(
    lab: orchestrator.RunningLab,
) -> None:
    capped, free = _run(lab, ("capped", "sink-a", ()), ("free", "sink-b", ()))
    (inbound,) = _run(lab, ("capped", "sink-a", ("-R",)))
    out_mbps, in_mbps, free_mbps = (_frame_mbps(r) for r in (capped, inbound, free))
    counters = _counters(lab)
    mode = fastpath_mode()
    print(f"\nQoS ({mode}): capped out {out_mbps:.1f} of {OUTBOUND_MBPS} Mbit/s, in"
          f" {in_mbps:.1f} of {INBOUND_MBPS}; its neighbour {free_mbps:.1f} Mbit/s;"
          f" drops {counters.get('drop:qos_outbound', 0)} out,"
          f" {counters.get('drop:qos_inbound', 0)} in")  # fmt: skip
    assert abs(out_mbps - OUTBOUND_MBPS) <= TOLERANCE * OUTBOUND_MBPS
    assert abs(in_mbps - INBOUND_MBPS) <= TOLERANCE * INBOUND_MBPS
    assert free_mbps > 2 * OUTBOUND_MBPS  # the cap is the port's, not the host's
    if mode == "off":  # the Python switch polices outbound: TCP found the cap by drops
        assert counters.get("drop:qos_outbound", 0) > 0
