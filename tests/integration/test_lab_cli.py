"""``hnv lab`` end to end on a small topology: up, status, exec, down, and errors."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from openhnv.cli import main
from openhnv.lab import builder, netns
from openhnv.testing.datapath_mode import fastpath_mode

pytestmark = pytest.mark.root

TOPOLOGY = """
name: {name}
pa_subnets:
  - {{name: pa, prefix: 192.168.50.0/24, vlan: 7, gateway: 192.168.50.1}}
hosts:
  - {{name: h1, pa_subnet: pa, uplinks: 1}}
virtual_networks:
  - name: vnet
    address_space: 10.5.0.0/16
    subnets:
      - {{name: s1, prefix: 10.5.1.0/24}}
vms:
  - {{name: a, host: h1, virtual_network: vnet, subnet: s1, ip: 10.5.1.10}}
  - name: b
    host: h1
    virtual_network: vnet
    subnet: s1
    ip: 10.5.1.11
    mac: "02:00:00:05:01:0b"
"""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    name = f"t{secrets.token_hex(3)}"
    path = tmp_path / "lab.yaml"
    path.write_text(TOPOLOGY.format(name=name))
    run_root = tmp_path / "run"
    try:
        yield name, path, run_root
    finally:
        builder.clean(builder.LabNames(name).prefix, run_root)


@pytest.mark.datapath
@pytest.mark.one_pass  # the commands; no traffic
def test_up_status_exec_down(
    lab: tuple[str, Path, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    name, path, run_root = lab
    root = ["lab", "--run-root", str(run_root)]
    assert main([*root, "up", str(path), "--fastpath", fastpath_mode()]) == 0
    out = capfd.readouterr().out
    assert "VLAN 7 access port" in out
    assert f"lab {name} is up" in out
    assert (run_root / name / "topology.yaml").exists()

    assert main([*root, "status", name]) == 0
    status = capfd.readouterr().out
    assert "vm   b" in status
    assert "10.5.1.11" in status
    assert "vlanport-pa" in status

    assert (
        main([*root, "exec", "--lab", name, "b", "--", "cat", "/sys/class/net/eth0/address"]) == 0
    )
    assert capfd.readouterr().out.strip() == "02:00:00:05:01:0b"
    assert main([*root, "exec", "b", "--", "false"]) == 1
    assert main([*root, "exec", "--lab", name, "nobody", "--", "true"]) == 1
    assert "no VM named 'nobody'" in capfd.readouterr().err

    # Migrations that are none are refused before anything changes (the lab has one host).
    assert main([*root, "migrate", "--lab", name, "b", "--to", "h1"]) == 1
    assert "hnv lab migrate: VM b already runs on h1" in capfd.readouterr().err
    assert main([*root, "migrate", "--lab", name, "b", "--to", "h9"]) == 1
    assert "no host named 'h9'" in capfd.readouterr().err

    # A second `up` of the same lab refuses and names the leftovers.
    assert main([*root, "up", str(path)]) == 1
    assert "already has namespaces" in capfd.readouterr().err

    assert main([*root, "down", name]) == 0
    removed = capfd.readouterr().out
    # fabric, router, the host, two VMs and the management network
    assert re.search(f"lab {name} removed: 6 namespaces, [3-9] daemons stopped", removed)
    assert netns.list_namespaces(builder.LabNames(name).prefix) == []


def test_a_bad_topology_names_the_key(
    lab: tuple[str, Path, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    _, path, run_root = lab
    path.write_text(path.read_text().replace("10.5.1.11", "10.5.1.300"))
    assert main(["lab", "--run-root", str(run_root), "up", str(path)]) == 1
    assert "vms[1].ip: 10.5.1.300 is not an IPv4 address" in capfd.readouterr().err
