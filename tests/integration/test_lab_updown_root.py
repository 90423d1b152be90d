"""``hnv lab up/status/down`` with the daemons, then nothing is left."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from lab_running import EXAMPLES, unique_name

from openhnv.cli import main
from openhnv.lab import builder, daemons, orchestrator
from openhnv.lab.rest import ControllerClient
from openhnv.testing.datapath_mode import fastpath_mode
from openhnv.testing.plugin import require_etcd

pytestmark = pytest.mark.root


@pytest.mark.datapath
@pytest.mark.one_pass  # the commands; no traffic
def test_up_status_down_then_nothing_left(
    tmp_path: pytest.TempPathFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    name = unique_name()
    text = (EXAMPLES / "figure8.yaml").read_text().replace("name: fig8", f"name: {name}")
    path = tmp_path / "lab.yaml"  # type: ignore[operator]
    path.write_text(text)
    pids: list[int] = []
    try:
        assert main(["lab", "up", str(path), "--fastpath", fastpath_mode()]) == 0
        out = capfd.readouterr().out
        assert "PUT /networkInterfaces/contoso-sql" in out
        assert "NICs programmed on their hosts: 4/4" in out
        run_dir = builder.run_dir_of(name)
        recorded = daemons.recorded(run_dir)
        assert {"controller", "host-host1", "host-host2", "vlanport-pa2"} <= set(recorded)
        pids = list(recorded.values())
        url = daemons.controller_url(run_dir)
        assert url is not None
        client = ControllerClient.connect(url, access=daemons.controller_access(run_dir))
        try:
            nics = client.list("networkInterfaces")
        finally:
            client.close()
        assert {n["properties"]["provisioningState"] for n in nics} == {"Succeeded"}
        assert main(["lab", "status", name]) == 0
        status = capfd.readouterr().out
        assert re.search(r"daemon host-host1\s+running", status)
        assert re.search(r"vm\s+contoso-web .* NIC Succeeded", status)
        assert "192.168.1.10" in status
        assert "192.168.2.20" in status
        assert re.search(r"host host2 .*192\.168\.2\.20.* Success$", status, re.MULTILINE)
        vfp = [sys.executable, "-m", "openhnv", "vfp", "list-ports"]
        assert main(["lab", "host", "--lab", name, "host1", "--", *vfp]) == 0
        ports = capfd.readouterr().out
        sql = next(n for n in nics if n["resourceId"] == "contoso-sql")
        assert sql["instanceId"] in ports
        assert "5001" in ports
        assert main(["lab", "host", "--lab", name, "nohost", "--", "true"]) == 1
        assert "no host named 'nohost'" in capfd.readouterr().err
        # (`hnv lab clean` removes every hnv- lab on the machine, other people's too,
        # so a test never runs it; `down` goes through the same removal by prefix.)
        assert main(["lab", "down", name]) == 0
        assert re.search(
            # fabric, router, 2 hosts, 4 VMs and the management network
            f"lab {name} removed: 9 namespaces, [4-9] daemons stopped",
            capfd.readouterr().out,
        )
    finally:
        orchestrator.down(name)
    assert orchestrator.leftovers(name) == []
    assert [p for p in pids if builder.alive(p)] == []


def test_a_failed_up_names_the_step_and_removes_everything(
    capfd: pytest.CaptureFixture[str], tmp_path: pytest.TempPathFactory
) -> None:
    name = unique_name()
    # Two VMs ask for the same static MAC: the second NIC's PUT is refused.
    text = (EXAMPLES / "figure8.yaml").read_text().replace("name: fig8", f"name: {name}")
    text = text.replace("    ip: 10.1.1.11\n", '    ip: 10.1.1.11\n    mac: "02:00:00:00:00:01"\n')
    path = tmp_path / "lab.yaml"  # type: ignore[operator]
    path.write_text(text)
    try:
        assert main(["lab", "up", str(path)]) == 1
        err = capfd.readouterr().err
        assert re.search(
            r"hnv lab up: VM fabrikam-sql on host1: PUT /networkInterfaces/fabrikam-sql:"
            r" 409 Conflict: DuplicateMacAddress",
            err,
        ), err
    finally:
        orchestrator.down(name)
    assert orchestrator.leftovers(name) == []


@pytest.mark.datapath
@pytest.mark.one_pass  # the controller replicas; no traffic
def test_up_with_three_controllers_survives_the_leader_and_leaves_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    require_etcd()
    name = unique_name()
    text = (EXAMPLES / "figure8.yaml").read_text().replace("name: fig8", f"name: {name}")
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    pids: list[int] = []
    try:
        argv = ["lab", "up", str(path), "--controllers", "3", "--fastpath", fastpath_mode()]
        assert main(argv) == 0
        out = capfd.readouterr().out
        assert out.count("controller replica serving") == 3
        assert "NICs programmed on their hosts: 4/4" in out
        run_dir = builder.run_dir_of(name)
        recorded = daemons.recorded(run_dir)
        cluster = {f"etcd-{i}" for i in (1, 2, 3)} | {f"controller-{i}" for i in (1, 2, 3)}
        assert cluster <= set(recorded)
        pids = list(recorded.values())
        assert main(["lab", "status", name]) == 0
        status = capfd.readouterr().out
        assert status.count("(leads)") == 1
        leader = next(
            n
            for n in ("controller-1", "controller-2", "controller-3")
            if re.search(rf"{re.escape(_url_of(run_dir, n))}/networking/v1/\s+\(leads\)", status)
        )
        builder.stop_pidfile(daemons.pidfile(run_dir, leader))
        client = ControllerClient.connect_any(
            daemons.controller_urls(run_dir), access=daemons.controller_access(run_dir)
        )
        try:  # any live replica answers; another takes over the hosts
            nics = client.list("networkInterfaces")
            assert {n["properties"]["provisioningState"] for n in nics} == {"Succeeded"}
        finally:
            client.close()
        assert main(["lab", "down", name]) == 0
    finally:
        orchestrator.down(name)
    assert orchestrator.leftovers(name) == []
    assert [p for p in pids if builder.alive(p)] == []


def _url_of(run_dir: Path, replica: str) -> str:
    """The URL of a replica: controller-N is the N-th line of controller.url."""
    index = int(replica.rsplit("-", 1)[1]) - 1
    return daemons.controller_urls(run_dir)[index]
