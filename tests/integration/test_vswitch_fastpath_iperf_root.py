"""TCP between two VMs through the kernel fast path, VM offloads on.

Both hosts run the fast path with entries installed by hand for the client's narrowed
ephemeral ports, and ``SlowPath`` (the Python switch's stand-in) forwards what the
kernel leaves to it: SYN, FIN and RST. iperf3 then runs with the VMs' TSO/GSO and
checksum offloads on: GSO frames must be encapsulated as GSO and the established
flow must stay in the kernel. The throughput is printed (a figure, never a bound).
Namespaces ``hnv-fp…`` from ``openhnv.testing.fastpath_net``, removed afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openhnv.testing.fastpath_net import (
    CLIENT_PORTS,
    IPERF_PORT,
    FastpathNet,
    SlowPath,
    iperf,
    narrow_ports,
    tcp_gbit_s,
)

pytestmark = [pytest.mark.root, pytest.mark.fastpath]

SECONDS = 2.0
HANDFUL = 64  # two connections: SYN, FIN, RST and retransmissions, counted by both hosts


OVERLAYS = {"vxlan": (False, None), "nvgre": (True, None), "vxlan-vlan": (False, 100)}


@pytest.fixture(params=sorted(OVERLAYS))
def net(request: pytest.FixtureRequest) -> Iterator[FastpathNet]:
    nvgre, vlan_id = OVERLAYS[request.param]
    vms = (("v1", "h1"), ("v2", "h2"))
    with FastpathNet("ip", vms=vms, nvgre=nvgre, vlan_id=vlan_id) as built:
        built.load("h1")
        built.load("h2")
        yield built


def test_tcp_with_offloads_on_runs_in_the_kernel(net: FastpathNet) -> None:
    slow = [SlowPath(net, "h1"), SlowPath(net, "h2")]
    narrow_ports(net, "v1")
    keys = net.install_connections("v1", "v2", CLIENT_PORTS, IPERF_PORT)
    report = iperf(net, "v1", "v2", SECONDS)
    overlay = ("nvgre" if net.nvgre else "vxlan") + (f" vlan {net.vlan_id}" if net.vlan_id else "")
    print(f"\nfast path ({overlay}), VM offloads on: {tcp_gbit_s(report)} Gbit/s TCP v1 -> v2")

    h1, h2 = net.fast_paths["h1"].counters.read(), net.fast_paths["h2"].counters.read()
    assert h1["hit_encap"] > 1000
    assert h2["hit_decap"] > 1000
    assert h1["err_helper"] == h2["err_helper"] == 0
    handled = sum(sum(s.counters.values()) for s in slow)
    assert 0 < handled <= HANDFUL  # setup and teardown only
    stats = net.fast_paths["h1"].port_flows.stats()
    data = max((stats[k] for k in keys if k in stats), key=lambda s: s.bytes)
    assert data.bytes > 100 * 1024 * 1024  # the data connection's bytes crossed the kernel
