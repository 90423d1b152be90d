"""examples/migration.yaml live: `hnv lab migrate` across PA subnets with traffic open.

The mover (inbound denied by its NIC ACL) runs iperf3 to the peer and holds one idle
connection; it moves host1 (pa1) -> host3 (pa2) mid-stream. iperf3 ends without an
error, the idle connection carries the peer's data first (a reply the destination's
port knows only from the moved connection table), the mover pings from host3, and
host1 no longer has the port. With the kernel fast path, host1's kernel keeps no entry
and host3's executes the mover's flows.
"""

from __future__ import annotations

import pytest
from lab_running import EXAMPLES, running_lab, topology_of

from openhnv.host import control
from openhnv.lab import migration, orchestrator, traffic
from openhnv.testing.migration import IdleConnection, Iperf3
from openhnv.testing.polling import eventually

pytestmark = [pytest.mark.root, pytest.mark.datapath]

IPERF_SECONDS = 5.0
PEER = "10.7.1.20"


def test_migration_keeps_tcp_through_a_stateful_acl() -> None:
    topology = topology_of(EXAMPLES / "migration.yaml")
    with running_lab(topology) as lab:
        mover, peer = lab.vm_namespace("mover"), lab.vm_namespace("peer")
        assert traffic.ping(mover, PEER) == 64
        with (
            IdleConnection(mover, peer, PEER, 7000) as idle,
            Iperf3(mover, peer, PEER, 5201, IPERF_SECONDS) as iperf,
        ):
            iperf.wait_streaming(mover, 5201)
            assert idle.exchange() == (b"from-peer\n", b"from-mover\n")
            report = migration.migrate_running(lab, "mover", "host3", print)
            print(f"\nmigration: {report.as_dict()}")
            assert report.adopted == report.connections >= 3  # iperf3 x2, idle (+ ping)
            assert idle.exchange() == (b"from-peer\n", b"from-mover\n")
            if orchestrator.fastpath_of(lab.run_dir) == "on":
                _kernel_follows(lab)
            result = iperf.result()
        assert "error" not in result, result.get("error")
        sent = result["end"]["sum_sent"]
        assert sent["bytes"] > 0
        print(f"iperf3 through the migration: {sent['bits_per_second'] / 1e6:.1f} Mbit/s,"
              f" {sent.get('retransmits', 0)} retransmits")  # fmt: skip
        assert traffic.ping(mover, PEER) == 64
        port = lab.nics["mover"]["instanceId"]
        on_host1 = control.call(lab.host_state_dir("host1"), "list-ports")
        on_host3 = control.call(lab.host_state_dir("host3"), "list-ports")
        assert port not in {row["name"] for row in on_host1}
        assert {(r["name"], r["attached"]) for r in on_host3} >= {(port, True)}
        server = lab.nics["mover"]["properties"]["server"]["resourceRef"]
        assert server.lower() == "/servers/host3"


def _kernel_follows(lab: orchestrator.RunningLab) -> None:
    """The source's kernel lost every entry of the mover (it has no other VM); the
    destination's kernel carries the mover's flows (iperf3's among them)."""
    port = lab.nics["mover"]["instanceId"]
    source, destination = lab.host_state_dir("host1"), lab.host_state_dir("host3")
    entries = control.call(source, "status")["fastpath"]["entries"]
    print(f"host1's kernel entries after the move: {entries}")
    assert entries == {"port": 0, "uplink": 0}

    def offloaded() -> list[str]:
        rows = control.call(destination, "list-flows", port=port)
        return [row["key"] for row in rows if row["offloaded"]]

    print(f"host3's kernel: {len(eventually(offloaded, 'the mover in host3s kernel'))} flows")
