"""The host agent against a real ovsdb-server, dual stack: a VM's port gets an unsolicited
Router Advertisement once it is programmed, and its Neighbor and Router Solicitations
(punted by the engine) are answered from the mapping store; its RAs carry its NIC's IPv6
DNS servers (RDNSS)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from scapy.layers.inet6 import (
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptRDNSS,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.layers.l2 import Ether

from openhnv.agent.agent import HostAgent
from openhnv.agent.ndp import router_link_local
from openhnv.lab import documents as docs
from openhnv.ovsdb.client import OvsdbClient
from openhnv.ovsdb.rows import diff
from openhnv.ovsdb.server import OvsdbServer
from openhnv.testing import snapshots as nb
from openhnv.testing.polling import eventually
from openhnv.testing.southbound import host_rows, port_of
from openhnv.vfp.engine import VfpEngine
from openhnv.vswitch.null import NullDriver
from openhnv.vswitch.switch import HostSwitch

WAIT = 15.0
A_MAC, B_MAC = "00:1d:d8:07:00:11", "00:1d:d8:07:00:12"
ROUTER_MAC = "40:1d:d8:b7:1c:06"
A_LL = "fe80::21d:d8ff:fe07:11"
A_DNS = ["10.7.0.53", "fd00:53::53", "fd00:53::54"]  # NIC a's dnsSettings.dnsServers


def dual_stack() -> dict[str, list[Any]]:
    subnet = docs.virtual_subnet("web", "10.7.0.0/24", vsid=5001, ipv6_prefix="fd00:7::/64")
    vnet = nb.stored(
        docs.virtual_network("Dual", ["10.7.0.0/16", "fd00:7::/48"], [subnet]),
        routingDomainId="2b0a7f14-5c1e-4d0e-9a11-c0c0c0c05001",
    )
    ips = {"a": ("10.7.0.11", "fd00:7::11"), "b": ("10.7.0.12", "fd00:7::12")}
    nics = [
        nb.nic(name, mac.replace(":", ""), [(ip, "Dual/web") for ip in ips[name]], host)
        for name, mac, host in (("a", A_MAC, "host1"), ("b", B_MAC, "host2"))
    ]
    nics[0]["properties"]["dnsSettings"] = {"dnsServers": A_DNS}
    return nb.snapshot(
        servers=[
            nb.server("host1", [nb.HOST1_PA], ["10.0.0.11"]),
            nb.server("host2", [nb.HOST2_PA], ["10.0.0.12"]),
        ],
        vnets=[vnet],
        nics=nics,
        config=nb.configuration(),
    )


@pytest.fixture
def host(ovsdb_server: OvsdbServer) -> Iterator[tuple[HostAgent, NullDriver, str]]:
    rows = host_rows(dual_stack())
    with OvsdbClient(ovsdb_server.unix_remote) as controller:
        controller.wait_synced(WAIT)
        controller.apply(diff({}, rows))
    driver = NullDriver()
    switch = HostSwitch(VfpEngine(), driver, expire_interval=None)
    switch.start()
    port = port_of(rows, "a")
    driver.inject_port(port, A_MAC)
    agent = HostAgent(switch, ovsdb_server.unix_remote, host_name="host1")
    agent.start(timeout=WAIT)
    yield agent, driver, port
    agent.stop()
    switch.stop()


def test_a_programmed_port_gets_an_unsolicited_router_advertisement(
    host: tuple[HostAgent, NullDriver, str],
) -> None:
    agent, driver, port = host
    sent = eventually(lambda: driver.take_sent(port), "an unsolicited RA")
    ra = Ether(sent[0])
    assert (ra.dst, ra[IPv6].dst, ra[IPv6].src) == (
        "33:33:00:00:00:01",
        "ff02::1",
        router_link_local(ROUTER_MAC),
    )
    assert ra[ICMPv6NDOptPrefixInfo].prefix == "fd00:7::"
    assert ICMPv6ND_RA in ra
    # REST dnsSettings -> compiler -> Physical_Port other_config -> agent: the IPv6 ones
    assert ra[ICMPv6NDOptRDNSS].dns == ["fd00:53::53", "fd00:53::54"]
    assert agent.counters()["ra_unsolicited"] == 1


def test_solicitations_from_the_vm_are_answered(host: tuple[HostAgent, NullDriver, str]) -> None:
    agent, driver, port = host
    eventually(lambda: driver.take_sent(port), "the first RA")  # out of the way
    ns = bytes(
        Ether(src=A_MAC, dst="33:33:ff:00:00:12")
        / IPv6(src="fd00:7::11", dst="ff02::1:ff00:12", hlim=255)
        / ICMPv6ND_NS(tgt="fd00:7::12")
        / ICMPv6NDOptSrcLLAddr(lladdr=A_MAC)
    )
    driver.inject_from_port(port, ns)
    (na,) = driver.take_sent(port)
    assert (Ether(na).src, Ether(na)[ICMPv6ND_NA].tgt) == (B_MAC, "fd00:7::12")
    rs = bytes(
        Ether(src=A_MAC, dst="33:33:00:00:00:02")
        / IPv6(src=A_LL, dst="ff02::2", hlim=255)
        / ICMPv6ND_RS()
    )
    driver.inject_from_port(port, rs)
    (ra,) = driver.take_sent(port)
    assert (Ether(ra).dst, Ether(ra)[IPv6].dst) == (A_MAC, A_LL)
    assert Ether(ra)[ICMPv6NDOptRDNSS].dns == ["fd00:53::53", "fd00:53::54"]
    counters = agent.counters()
    assert (counters["nd_messages"], counters["nd_replies"]) == (2, 2)
