"""lab_running.two_hosts: the two-host lab the root tests share, checked without root."""

from __future__ import annotations

import ipaddress

from lab_running import PA_PREFIX, network, subnet, two_hosts, vm

NETWORKS = [
    network("blue", "10.8.0.0/16", subnet("s", "10.8.1.0/24", vsid=7101)),
    network("red", "10.8.0.0/16", subnet("s", "10.8.1.0/24", prefix6="fd00:8::/64")),
]
VMS = [
    vm("a", "h1", "10.8.1.10", "blue"),
    vm("b", "h2", "10.8.1.10", "red", ip6="fd00:8::10", qos={"outbound_max_mbps": 50}),
]


def test_two_hosts_on_one_pa_subnet_with_the_given_networks_and_vms() -> None:
    topology = two_hosts(NETWORKS, VMS)
    (pa,) = topology.pa_subnets
    assert (pa.prefix, pa.gateway) == (
        ipaddress.ip_network(PA_PREFIX),
        ipaddress.ip_address("192.168.60.1"),
    )
    assert [(h.name, h.pa_subnet, h.uplinks) for h in topology.hosts] == [
        ("h1", "pa", 1),
        ("h2", "pa", 1),
    ]
    assert [(n.name, [s.vsid for s in n.subnets]) for n in topology.virtual_networks] == [
        ("blue", [7101]),
        ("red", [None]),
    ]
    b = topology.vm("b")
    assert (b.host, b.virtual_network, str(b.ip6), b.qos_outbound_mbps) == (
        "h2", "red", "fd00:8::10", 50,
    )  # fmt: skip
    assert topology.encapsulation == "vxlan"  # the topology's default


def test_each_call_names_its_lab_anew_and_takes_the_options() -> None:
    first = two_hosts(NETWORKS, VMS, uplinks=2, pa_prefix="10.99.0.0/24", encapsulation="nvgre")
    second = two_hosts(NETWORKS, VMS)
    assert first.name != second.name
    assert {h.uplinks for h in first.hosts} == {2}
    assert str(first.pa_subnets[0].gateway) == "10.99.0.1"
    assert first.encapsulation == "nvgre"
