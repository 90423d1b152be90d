"""Team failover in a whole lab: ``hnv host``, its agent and the controller.

Two hosts with two team members each (the lab's default), a VM on each. The cable of
the member carrying the PA that v1's mapping names is pulled on the fabric side: v1
still reaches v2, ``hnv host provider-addresses`` shows the PA on the other member,
``hnv host status`` the member without carrier, and the controller's
``servers/h1`` ``configurationState`` warns (``ProviderAddressMoved``) from the host's
team member rows. With the cable back, the PA is home and the warning is gone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from lab_running import network, running_lab, subnet, two_hosts, vm

from openhnv.inspect import host_cmd
from openhnv.lab import netns, orchestrator, traffic
from openhnv.lab.builder import LabNames
from openhnv.lab.rest import ControllerClient
from openhnv.testing.polling import eventually

pytestmark = [pytest.mark.root, pytest.mark.datapath]

NETWORKS = [network("vnet", "10.8.0.0/16", subnet("s", "10.8.1.0/24"))]
VMS = [vm("v1", "h1", "10.8.1.10", "vnet"), vm("v2", "h2", "10.8.1.11", "vnet")]
UPLINKS = 2  # team members per host


def query(
    lab: orchestrator.RunningLab, host: str, what: str, capsys: pytest.CaptureFixture[str]
) -> Any:
    """``hnv host <what> --json`` on ``host``."""
    capsys.readouterr()
    assert host_cmd.main([what, "--state-dir", str(lab.host_state_dir(host)), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def server_state(client: ControllerClient, host: str) -> tuple[str, str]:
    state = client.get(f"/servers/{host}")["properties"]["configurationState"]
    return state["status"], state["detailedInfo"][0]["code"]


def test_a_pulled_member_moves_its_pa_and_the_controller_hears_of_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    topology = two_hosts(NETWORKS, VMS, uplinks=UPLINKS)
    with running_lab(topology) as lab:
        v1, v2 = lab.vm_namespace("v1"), lab.vm_namespace("v2")
        eventually(lambda: traffic.ping(v1, "10.8.1.11", 1) is not None, "v1 reaches v2")
        mappings = query(lab, "h2", "pa-ca-mapping", capsys)
        (pa,) = {m["pa_ip_address"] for m in mappings if m["ca_ip_address"] == "10.8.1.10"}
        pas = {p["provider_address"]: p for p in query(lab, "h1", "provider-addresses", capsys)}
        home = pas[pa]["interface"]
        other = next(p["interface"] for a, p in pas.items() if a != pa)
        fabric, peer = LabNames(topology.name).fabric, LabNames.uplink_peer("h1", int(home[2:]))
        client = ControllerClient.connect(lab.controller_url, access=lab.access)
        try:
            eventually(lambda: server_state(client, "h1")[0] == "Success", "h1 connected")

            netns.set_down(fabric, peer)

            def moved() -> list[dict[str, Any]]:
                rows: list[dict[str, Any]] = query(lab, "h1", "provider-addresses", capsys)
                return rows

            eventually(
                lambda: any(p["provider_address"] == pa and p["member"] == other and p["moved"]
                            for p in moved()),
                f"PA {pa} on {other}",
            )  # fmt: skip
            assert query(lab, "h1", "status", capsys)["team"]["members"][home] == "down"
            assert traffic.ping(v1, "10.8.1.11", 3) is not None
            assert traffic.ping(v2, "10.8.1.10", 3) is not None
            eventually(
                lambda: server_state(client, "h1") == ("Warning", "ProviderAddressMoved"),
                "the controller warns of the moved PA",
            )

            netns.set_up(fabric, peer)
            eventually(lambda: not any(p["moved"] for p in moved()), f"PA {pa} home on {home}")
            assert traffic.ping(v1, "10.8.1.11", 3) is not None
            eventually(lambda: server_state(client, "h1")[0] == "Success", "the warning gone")
        finally:
            client.close()
