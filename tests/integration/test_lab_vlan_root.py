"""examples/vlan-network.yaml live: VMs on a logical (VLAN) subnet talk to a plain server
of that VLAN (no HNV on it) and to each other across hosts, tagged and not
encapsulated; the NIC's ACL refuses a denied port; HNV VMs beside them still work.
Run with the kernel fast path on and off (HNV_TEST_FASTPATH): access ports stay with
the Python switch either way."""

from __future__ import annotations

import pytest
from lab_running import EXAMPLES, running_lab, topology_of

from openhnv.host import control
from openhnv.lab import traffic
from openhnv.lab.edge_builder import EdgeNames
from openhnv.lab.orchestrator import RunningLab, fastpath_of
from openhnv.testing.polling import eventually

pytestmark = [pytest.mark.root, pytest.mark.datapath]

PLAIN = "10.50.0.99"


def test_vlan_vms_reach_a_plain_vlan_server_and_their_acl_holds() -> None:
    topology = topology_of(EXAMPLES / "vlan-network.yaml")
    with running_lab(topology) as lab:
        ns = lab.vm_namespace
        plain = EdgeNames(topology.name).physical("plain")
        assert traffic.ping(ns("vlanvm1"), PLAIN) == 64  # bridged: no router, no TTL drop
        assert traffic.ping(plain, "10.50.0.11") == 64  # into host2's access port
        with traffic.TcpResponder(plain, PLAIN, 8080, b"plain\n") as server:
            assert traffic.tcp_answer(ns("vlanvm1"), PLAIN, 8080, b"q") == b"plain\n"
            assert server.peers[0][0] == "10.50.0.10"
        with traffic.TcpResponder(ns("vlanvm1"), "10.50.0.10", 8080, b"vm1\n"):
            assert traffic.tcp_answer(plain, "10.50.0.10", 8080, b"q") == b"vm1\n"
            assert traffic.tcp_answer(ns("vlanvm2"), "10.50.0.10", 8080, b"q") == b"vm1\n"
        # vlanvm1's ACL denies TCP 22 inbound: dropped, never refused, nothing arrives.
        with traffic.TcpResponder(ns("vlanvm1"), "10.50.0.10", 22, b"ssh\n") as ssh:
            with pytest.raises(TimeoutError):
                traffic.tcp_request(plain, "10.50.0.10", 22, b"q", timeout=2.0)
            assert ssh.peers == []
        # vlanvm2 has no ACL of its own: the defaults let the VLAN's own space in.
        with traffic.TcpResponder(ns("vlanvm2"), "10.50.0.11", 22, b"ssh2\n"):
            assert traffic.tcp_answer(plain, "10.50.0.11", 22, b"q") == b"ssh2\n"
        # The VLAN is not the virtual network: no path between them.
        assert traffic.ping(ns("vlanvm1"), "10.2.1.11", count=1) is None
        assert traffic.ping(ns("web1"), "10.2.1.11") == 64
        nic = lab.nics["vlanvm1"]
        assert nic["properties"]["provisioningState"] == "Succeeded"
        # The switch decided the access port's flows, and none went to the kernel; with
        # the fast path on, the HNV VMs' established flows did (it ran in this lab).
        access = flows(lab, "host1", "vlanvm1")
        assert access
        assert not any(f["offloaded"] for f in access)
        if fastpath_of(lab.run_dir) == "on":
            with traffic.TcpResponder(ns("web2"), "10.2.1.11", 8080, b"web2\n"):
                for _ in range(3):
                    assert traffic.tcp_answer(ns("web1"), "10.2.1.11", 8080, b"q") == b"web2\n"
            eventually(lambda: any(f["offloaded"] for f in flows(lab, "host1", "web1")),
                       "web1's established flows in the kernel", timeout=10.0)  # fmt: skip
            assert not any(f["offloaded"] for f in flows(lab, "host1", "vlanvm1"))


def flows(lab: RunningLab, host: str, vm: str) -> list[dict[str, object]]:
    port = str(lab.nics[vm]["instanceId"])
    found = control.call(lab.host_state_dir(host), "list-flows", port=port)
    assert isinstance(found, list)
    return found
