"""DHCP from NC data in a lab: a VM with ``dhcp: true`` runs a real client (busybox
udhcpc) and gets its NIC's address, prefix, gateway, DNS servers and MTU from its host;
with ``ip6`` also a real DHCPv6 client (dhclient -6), which gets its IPv6 address and
IPv6 DNS servers from the host's DHCPv6 answer (its prefix and route from the RA)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lab_running import network, running_lab, subnet, two_hosts, vm

from openhnv.host.control import call
from openhnv.lab import dhcp6_client, dhcp_client, netns, orchestrator, traffic
from openhnv.lab.builder import VM_INTERFACE, VM_MTU
from openhnv.testing.chaos import faults
from openhnv.testing.polling import eventually

pytestmark = [pytest.mark.root, pytest.mark.datapath]

NETWORKS = [
    network(
        "blue", "10.9.0.0/16",
        subnet("s1", "10.9.1.0/24", vsid=7201, prefix6="fd00:9:0:1::/64"),
        subnet("s2", "10.9.2.0/24", vsid=7202, prefix6="fd00:9:0:2::/64"),
    )
]  # fmt: skip
VMS = [
    vm("d", "h1", "10.9.1.20", "blue", "s1", dhcp=True,
       dns=["10.9.1.53", "192.0.2.53", "fd00:53::53"], ip6="fd00:9:0:1::20"),
    vm("e", "h2", "10.9.2.30", "blue", "s2", ip6="fd00:9:0:2::30"),
]  # fmt: skip


# The leases come from the VM's own host; the wire only carries the pings to e, which
# test_lab_l2_root and test_lab_figure8_root check on both: NVGRE is a long variant.
@pytest.fixture(scope="module", params=["vxlan", pytest.param("nvgre", marks=pytest.mark.long)])
def lab(request: pytest.FixtureRequest) -> Iterator[orchestrator.RunningLab]:
    with running_lab(two_hosts(NETWORKS, VMS, encapsulation=request.param)) as running:
        yield running


def test_the_dhcp_vm_gets_its_nic_configuration(lab: orchestrator.RunningLab) -> None:
    lease = dhcp_client.read_lease(lab.run_dir, "d")
    assert {k: lease[k] for k in ("ip", "mask", "router", "dns", "mtu", "serverid")} == {
        "ip": "10.9.1.20",
        "mask": "24",
        "router": "10.9.1.1",  # the distributed router's address in s1
        "dns": "10.9.1.53 192.0.2.53",  # the NIC's dnsSettings.dnsServers
        "mtu": str(VM_MTU),  # the lab's underlay carries 1500 encapsulated
        "serverid": "10.9.1.1",
    }
    namespace = lab.vm_namespace("d")
    addresses = netns.exec_in(namespace, ["ip", "-4", "-o", "addr", "show", VM_INTERFACE]).stdout
    assert "10.9.1.20/24" in addresses
    routes = netns.exec_in(namespace, ["ip", "-4", "route", "show", "default"]).stdout
    assert routes.startswith("default via 10.9.1.1 ")
    agent = call(lab.host_state_dir("h1"), "status")["agent"]["counters"]
    assert agent["dhcp_replies"] >= 2  # at least an OFFER and an ACK
    assert agent.get("dhcp_unanswered", 0) == 0


def test_the_dhcp_vm_reaches_a_vm_of_another_subnet_on_another_host(
    lab: orchestrator.RunningLab,
) -> None:
    assert traffic.ping(lab.vm_namespace("d"), "10.9.2.30", count=3) is not None
    assert traffic.ping(lab.vm_namespace("e"), "10.9.1.20", count=3) is not None


def test_the_dhcp_vm_gets_its_ipv6_address_from_dhcpv6_and_reaches_another_host(
    lab: orchestrator.RunningLab,
) -> None:
    lease = dhcp6_client.read_lease(lab.run_dir, "d")
    assert (lease["ip6"], lease["dns6"]) == ("fd00:9:0:1::20", "fd00:53::53")
    namespace = lab.vm_namespace("d")
    addresses = netns.exec_in(namespace, ["ip", "-6", "-o", "addr", "show", VM_INTERFACE]).stdout
    assert "fd00:9:0:1::20/128" in addresses  # DHCPv6 gives an address, the RA its prefix
    agent = call(lab.host_state_dir("h1"), "status")["agent"]["counters"]
    assert agent["dhcp6_replies"] >= 2  # an Advertise and a Reply
    assert agent.get("dhcp6_unanswered", 0) == 0
    assert traffic.ping(namespace, "fd00:9:0:2::30", count=3) is not None
    assert traffic.ping(lab.vm_namespace("e"), "fd00:9:0:1::20", count=3) is not None


@pytest.mark.parametrize("lab", ["vxlan"], indirect=True)  # the wire does not matter here
def test_a_rebuilt_host_gives_its_dhcp_vm_a_lease_again(lab: orchestrator.RunningLab) -> None:
    faults.restart_host_namespace(lab, "h1")  # the VM's link and address go with it
    assert dhcp_client.read_lease(lab.run_dir, "d")["ip"] == "10.9.1.20"
    eventually(
        lambda: traffic.ping(lab.vm_namespace("d"), "10.9.2.30", count=1) is not None,
        "d reaches e again",
    )
    assert dhcp6_client.read_lease(lab.run_dir, "d")["ip6"] == "fd00:9:0:1::20"
    eventually(
        lambda: traffic.ping(lab.vm_namespace("d"), "fd00:9:0:2::30", count=1) is not None,
        "d reaches e again over IPv6",
    )
