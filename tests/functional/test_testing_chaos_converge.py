"""The chaos suite's convergence check against a real controller and real host databases:
silent on a converged datacenter, and naming a row lost behind the controller's back."""

from __future__ import annotations

import tempfile
from pathlib import Path

from openhnv.ovsdb.rows import RowChange
from openhnv.testing.chaos.converge import northbound_problems, row_problems, snapshot
from openhnv.testing.datacenter import fabric, nic, server, vnet
from openhnv.testing.ovsdb import host_databases
from openhnv.testing.polling import eventually
from openhnv.testing.processes import ControllerProcess


def test_converged_hosts_show_no_problem_and_a_lost_row_is_named() -> None:
    with (
        host_databases("h1", "h2") as hosts,
        ControllerProcess(Path(tempfile.mkdtemp(prefix="hnv-nc-")) / "nc.db") as nc,
    ):
        fabric(nc)
        for name, host in hosts.items():
            server(nc, name, host.remote)
        vnet(nc, "A", "10.1.0.0/16", 5001)
        nic(nc, "n1", "A", "10.1.0.11", "h1")
        nic(nc, "n2", "A", "10.1.0.12", "h2")
        remotes = {name: host.remote for name, host in hosts.items()}
        client = nc.client()

        def quiet() -> bool:
            state = snapshot(client)
            return not northbound_problems(state) and not row_problems(state, remotes)

        eventually(quiet, "NICs Succeeded and hosts holding the compiled rows")
        state = snapshot(client)
        client.close()
        nc.kill()  # nobody repairs what happens next
        with hosts["h1"].client() as h1:
            macs = sorted(h1.snapshot(["Ucast_Macs_Remote"])["Ucast_Macs_Remote"])
            h1.apply([RowChange("delete", "Ucast_Macs_Remote", macs[0], {})])
        assert row_problems(state, remotes) == [f"h1: Ucast_Macs_Remote {macs[0]}: missing"]
