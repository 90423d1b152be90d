"""examples/two-subnets.yaml live: routing between subnets (TTL), the back end's ACL, state."""

from __future__ import annotations

import pytest
from lab_running import EXAMPLES, running_lab, topology_of

from openhnv.lab import traffic

pytestmark = [pytest.mark.root, pytest.mark.datapath]


# Routing, the ACL and its state are the hosts' (figure 8 checks both wires): the
# example's own NVGRE in make test, VXLAN as a long variant.
@pytest.mark.parametrize("encapsulation", ["nvgre", pytest.param("vxlan", marks=pytest.mark.long)])
def test_routing_acl_and_stateful_return(encapsulation: str) -> None:
    topology = topology_of(EXAMPLES / "two-subnets.yaml", encapsulation=encapsulation)
    with running_lab(topology) as lab:
        ns = lab.vm_namespace
        # Same subnet, other host: no router on the way, the TTL arrives untouched.
        assert traffic.ping(ns("web1"), "10.2.1.11") == 64
        # Front end -> back end SQL: routed by the distributed router, allowed by the ACL.
        with traffic.TcpResponder(ns("sql1"), "10.2.2.10", 1433, b"sql1\n") as sql:
            assert traffic.tcp_answer(ns("web1"), "10.2.2.10", 1433, b"q") == b"sql1\n"
            assert sql.peers[0][0] == "10.2.1.10"
        # Anything else into the back end is denied (rule 200), ICMP included.
        with traffic.TcpResponder(ns("sql1"), "10.2.2.10", 22, b"ssh\n") as ssh:
            with pytest.raises(TimeoutError):  # dropped, never refused
                traffic.tcp_request(ns("web1"), "10.2.2.10", 22, b"q", timeout=2.0)
            assert ssh.peers == []
        assert traffic.ping(ns("web2"), "10.2.2.10") is None
        # The back end may open connections out; the replies pass the inbound deny.
        with traffic.TcpResponder(ns("web1"), "10.2.1.10", 8080, b"web1\n"):
            assert traffic.tcp_answer(ns("sql1"), "10.2.1.10", 8080, b"q") == b"web1\n"
        # Routed once on the way back too: web1's echo reply reaches sql1 with TTL 63.
        assert traffic.ping(ns("sql1"), "10.2.1.10") == 63
