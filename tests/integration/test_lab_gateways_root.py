"""examples/gateways.yaml end to end: Contoso and Fabrikam (same CAs) reach the Internet
through NAT, Contoso its site over IPsec (strongSwan both ends), Fabrikam a physical
server over L3 and a bare-metal server behind a TOR; neither reaches the other's. A
gateway host's restart, a lost compartment, and withdrawn connections."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from lab_running import EXAMPLES, running_lab, topology_of

from openhnv.gateway import daemons as gateway_daemons
from openhnv.gateway.manager import GATEWAY_DIR
from openhnv.lab import builder, daemons, netns, traffic
from openhnv.lab.edge_builder import EdgeNames
from openhnv.lab.edge_checks import edge_checks
from openhnv.lab.edge_up import start_gateway_hosts
from openhnv.lab.orchestrator import RunningLab
from openhnv.lab.rest import ControllerClient
from openhnv.testing.polling import eventually

pytestmark = pytest.mark.root

GATEWAY = "gw1"
RESTART_SECONDS = 30.0
PHYSICAL = "172.16.20.10"
INTERNET = "203.0.113.1"


@pytest.fixture(scope="module")
def lab() -> Iterator[RunningLab]:
    with running_lab(topology_of(EXAMPLES / "gateways.yaml")) as running:
        yield running


def failed(running: RunningLab) -> list[str]:
    return [f"{c.name}: {c.detail}" for c in edge_checks(running, lambda _: None) if not c.ok]


def compartment(running: RunningLab, vgw: str) -> str:
    return EdgeNames(running.name).compartments(GATEWAY) + vgw.lower()


def charon_pid(running: RunningLab, vgw: str) -> int | None:
    ipsec = running.host_state_dir(GATEWAY) / GATEWAY_DIR / vgw.lower() / "ipsec"
    return gateway_daemons.running(gateway_daemons.charon_pidfile(ipsec))


def customer_routes(running: RunningLab, host: str) -> list[dict[str, Any]]:
    argv = daemons.hnv_argv(
        "host", "customer-routes", "--json", "--state-dir", str(running.host_state_dir(host))
    )
    done = subprocess.run(
        argv, capture_output=True, text=True, env=daemons.python_env(), timeout=30, check=True
    )
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def static_prefixes(running: RunningLab) -> set[str]:
    """Static customer routes of every host (prefixes to a gateway)."""
    return {
        str(row["prefix"])
        for host in ("host1", "host2")
        for row in customer_routes(running, host)
        if row["type"] == "static"
    }


def test_every_way_out_works_and_the_tenants_stay_apart(lab: RunningLab) -> None:
    assert failed(lab) == []


def test_compartments_are_namespaces_of_their_own(lab: RunningLab) -> None:
    contoso, fabrikam = compartment(lab, "Contoso-gw"), compartment(lab, "Fabrikam-gw")
    assert {contoso, fabrikam} <= set(netns.list_namespaces())
    # the same gateway-subnet CA in both: only separate namespaces can hold them
    for namespace in (contoso, fabrikam):
        shown = netns.exec_in(namespace, ["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
        assert "10.1.254.2/24" in shown.stdout


def test_a_gateway_host_restart_keeps_traffic_and_rebuilds_a_lost_compartment(
    lab: RunningLab,
) -> None:
    charon = charon_pid(lab, "Contoso-gw")
    assert charon is not None
    builder.stop_pidfile(daemons.pidfile(lab.run_dir, daemons.host_daemon(GATEWAY)))
    assert builder.alive(charon)  # compartments and their daemons outlive the host process
    netns.delete_namespace(compartment(lab, "Fabrikam-gw"))  # as a reboot would lose it
    start_gateway_hosts(lab.lab, lambda _: None)
    fabrikam_vm = lab.vm_namespace("fabrikam-vm1")
    eventually(
        lambda: traffic.ping(fabrikam_vm, PHYSICAL, count=1) is not None,
        "Fabrikam's compartment rebuilt after the restart",
        timeout=RESTART_SECONDS,
    )
    eventually(lambda: not failed(lab), "every check passes again", timeout=RESTART_SECONDS)
    assert charon_pid(lab, "Contoso-gw") == charon  # adopted, not restarted


def test_withdrawn_connections_and_gateways_leave_no_route(lab: RunningLab) -> None:
    client = ControllerClient.connect(lab.controller_url, access=lab.access)
    try:
        client.delete("/virtualGateways/Fabrikam-gw/networkConnections/physnet")
        eventually(
            lambda: "172.16.20.0/24" not in static_prefixes(lab),
            "the L3 connection's routes withdrawn on every host",
        )
        namespace = lab.vm_namespace("fabrikam-vm1")
        assert traffic.ping(namespace, PHYSICAL, count=1, wait=1.0) is None
        assert traffic.ping(namespace, INTERNET) is not None  # its NAT connection stays
        client.delete("/virtualGateways/Fabrikam-gw")
        eventually(
            lambda: compartment(lab, "Fabrikam-gw") not in netns.list_namespaces(),
            "Fabrikam's compartment removed from the gateway host",
        )
        eventually(
            lambda: (
                len([r for r in customer_routes(lab, "host1") if r["type"] == "static"])
                == len(["0.0.0.0/0", "192.168.100.0/24"])
            ),
            "only Contoso's static routes left",
        )
        assert traffic.ping(namespace, INTERNET, count=1, wait=1.0) is None
        assert traffic.ping(lab.vm_namespace("contoso-vm1"), INTERNET) is not None
    finally:
        client.close()
