"""Servers registered as SDN Express registers them (a bare IP) connect over SSL.

The lab gives each host an address on a management network of its own and registers
the server by that address alone; the controller dials the host agent's OVSDB over SSL
at 6640 with the lab's ``hnv pki`` certificates, and every server reaches
``configurationState`` Success. The controller reaches the management network only
through the lab's veth (its peer inside the lab), and a host without the controller's
certificate is refused.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl

import pytest
from lab_running import EXAMPLES, running_lab, topology_of
from pyroute2 import IPRoute

from openhnv.lab import management
from openhnv.lab.rest import ControllerClient

# the controller's SSL connections to the hosts; no traffic
pytestmark = [pytest.mark.root, pytest.mark.datapath, pytest.mark.one_pass]


def _routes_to(prefix: ipaddress.IPv4Network) -> set[str]:
    """Root-namespace interfaces with a route into ``prefix`` (not the default route)."""
    with IPRoute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        found: set[str] = set()
        for route in ipr.get_routes(family=2):
            dst = route.get_attr("RTA_DST")
            if dst is None or route["dst_len"] == 0:
                continue
            if ipaddress.ip_network(f"{dst}/{route['dst_len']}").overlaps(prefix):
                found.add(str(names.get(route.get_attr("RTA_OIF"))))
        return found


def _refused_without_certificate(address: str) -> bool:
    """True when the host's OVSDB at ``address`` ends a TLS session that shows it no
    client certificate before answering anything."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = b'{"method": "list_dbs", "params": [], "id": 1}'
    with (
        contextlib.suppress(ssl.SSLError, ConnectionError),
        socket.create_connection((address, management.OVSDB_SSL_PORT), timeout=10) as raw,
        context.wrap_socket(raw) as tls,
    ):
        tls.sendall(request)
        return tls.recv(4096) == b""
    return True


def test_bare_ip_servers_connect_over_ssl() -> None:
    topology = topology_of(EXAMPLES / "figure8.yaml")
    plan = management.plan(topology)
    with running_lab(topology) as lab:
        assert _routes_to(plan.prefix) == {plan.root_link}  # main and local tables
        client = ControllerClient.connect(lab.controller_url, access=lab.access)
        try:
            for host in topology.hosts:
                server = client.get(f"/servers/{host.name}")
                connection = server["properties"]["connections"][0]
                assert connection["managementAddresses"] == [plan.address(host.name)]
                state = server["properties"]["configurationState"]
                assert state["status"] == "Success"
                message = state["detailedInfo"][0]["message"]
                assert f"ssl:{plan.address(host.name)}:6640" in message
        finally:
            client.close()
        # the host's OVSDB asks for a certificate of the controller CA: a client without
        # one is refused during the handshake
        address = plan.address(topology.hosts[0].name)
        assert _refused_without_certificate(address)
    assert _routes_to(plan.prefix) == set()
