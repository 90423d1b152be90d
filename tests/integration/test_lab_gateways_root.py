"""examples/gateways.yaml end to end: Contoso and Fabrikam (same CAs) reach the Internet
through NAT, Contoso its site over IPsec with a pre-shared key and Fabrikam its branch
with certificates (strongSwan both ends), Fabrikam a physical server over L3 and a
bare-metal server behind a TOR; neither reaches the other's. A certificate from another
authority refused, a gateway host's restart, a lost compartment, and withdrawn
connections."""

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
from openhnv.lab.documents import Resource, reference
from openhnv.lab.edge_builder import EdgeNames
from openhnv.lab.edge_checks import edge_checks
from openhnv.lab.edge_resources import new_authority
from openhnv.lab.edge_up import start_gateway_hosts
from openhnv.lab.orchestrator import RunningLab
from openhnv.lab.rest import ControllerClient
from openhnv.testing.polling import eventually

pytestmark = [pytest.mark.root, pytest.mark.datapath]

GATEWAY = "gw1"
RESTART_SECONDS = 30.0
PHYSICAL = "172.16.20.10"
INTERNET = "203.0.113.1"
BRANCH = "/virtualGateways/Fabrikam-gw/networkConnections/branch"
WRONG_CA = "wrong-ipsec-ca"
TUNNEL_SECONDS = 30.0
BRANCH_PORT = 8443
# what charon says of a peer certificate its trusted authority did not sign
TRUST_REFUSED = ("not authenticated by CA", "no issuer certificate", "no trusted")


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


def tunnel(running: RunningLab, vgw: str, connection: str) -> dict[str, str]:
    """A connection's tunnel state on the gateway host (``hnv host compartments``)."""
    argv = daemons.hnv_argv(
        "host", "compartments", "--json", "--state-dir", str(running.host_state_dir(GATEWAY))
    )
    done = subprocess.run(
        argv, capture_output=True, text=True, env=daemons.python_env(), timeout=30, check=True
    )
    found: dict[str, str] = json.loads(done.stdout)["compartments"][vgw]["tunnels"][connection]
    return found


def gateway_problems(running: RunningLab) -> list[dict[str, str]]:
    argv = daemons.hnv_argv(
        "host", "compartments", "--json", "--state-dir", str(running.host_state_dir(GATEWAY))
    )
    done = subprocess.run(
        argv, capture_output=True, text=True, env=daemons.python_env(), timeout=30, check=True
    )
    found: list[dict[str, str]] = json.loads(done.stdout)["problems"]
    return found


def put_peer_authority(client: ControllerClient, credential: str) -> None:
    """Fabrikam's branch connection, trusting the authority ``credential`` holds."""
    properties = client.get(BRANCH)["properties"]
    properties["ipSecConfiguration"]["peerCertificateAuthority"] = reference(
        "credentials", credential
    )
    body = {"resourceId": "branch", "properties": properties}
    client.put(Resource("virtualGateways/Fabrikam-gw/networkConnections", "branch", body))


def branch_answers(running: RunningLab) -> bool:
    """Fabrikam's VM reaches the branch server by ping and TCP through the tunnel."""
    server = running.topology.edge.site("branch").server
    vm = running.vm_namespace("fabrikam-vm1")
    remote = EdgeNames(running.name).site_server("branch")
    answer = b"branch server\n"
    with traffic.TcpResponder(remote, str(server), BRANCH_PORT, answer):
        reply = traffic.tcp_answer(vm, str(server), BRANCH_PORT, b"hello\n")
    return traffic.ping(vm, str(server), count=1, wait=1.0) is not None and reply == answer


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


@pytest.mark.one_pass  # charon's trust; the VM's way to the branch is every_way_out's
def test_a_certificate_tunnel_carries_traffic_and_refuses_another_authority(
    lab: RunningLab,
) -> None:
    assert branch_answers(lab)
    eventually(  # the host's status is as of its last look (every few seconds)
        lambda: tunnel(lab, "Fabrikam-gw", "branch") == {"state": "Connected", "reason": ""},
        "the branch tunnel shown Connected",
        timeout=TUNNEL_SECONDS,
    )
    client = ControllerClient.connect(lab.controller_url, access=lab.access)
    try:
        wrong = new_authority("another IPsec CA")
        client.put(Resource("credentials", WRONG_CA, {
            "resourceId": WRONG_CA,
            "properties": {"type": "X509Certificate", "value": wrong.pem},
        }))  # fmt: skip
        put_peer_authority(client, WRONG_CA)
        seen: list[dict[str, str]] = []

        def refused() -> bool:
            seen.append(tunnel(lab, "Fabrikam-gw", "branch"))
            return any(marker in seen[-1]["reason"] for marker in TRUST_REFUSED)

        try:
            eventually(refused, "the branch's certificate refused", timeout=TUNNEL_SECONDS)
        except AssertionError as err:
            log = lab.host_state_dir(GATEWAY) / GATEWAY_DIR / "fabrikam-gw" / "ipsec"
            tail = "\n".join(gateway_daemons.charon_log_tail(log)[-40:])
            out = (log / "charon.out").read_text(errors="replace")[-2000:]
            raise AssertionError(
                f"{err}; tunnel {seen[-1:]}; problems {gateway_problems(lab)}; charon "
                f"{gateway_daemons.running(gateway_daemons.charon_pidfile(log))}:\n{tail}\n{out}"
            ) from None
        assert tunnel(lab, "Fabrikam-gw", "branch")["state"] != "Connected"
        assert not branch_answers(lab)
        assert tunnel(lab, "Contoso-gw", "onprem")["state"] == "Connected"  # its own files
    finally:
        put_peer_authority(client, "lab-ipsec-ca")
        client.close()
    eventually(lambda: branch_answers(lab), "the tunnel back with the right authority",
               timeout=TUNNEL_SECONDS)  # fmt: skip
    eventually(
        lambda: tunnel(lab, "Fabrikam-gw", "branch")["state"] == "Connected",
        "the branch tunnel shown Connected again",
        timeout=TUNNEL_SECONDS,
    )


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
