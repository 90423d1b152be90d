"""``lab.migration``'s pure parts: where a VM may move, the placement it leaves, the PUT
a client sends back, and reading a host's ``list-ports``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openhnv.lab.errors import LabError
from openhnv.lab.migration import (
    ATTACHED,
    GONE,
    PROGRAMMED,
    moved,
    moved_document,
    placed,
    placement,
    port_state,
    record_placement,
)
from openhnv.lab.topology import load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_moved_places_the_vm_on_its_new_host_only() -> None:
    topology = load(EXAMPLES / "migration.yaml")
    after = moved(topology, "mover", "host3")
    assert after.vm("mover").host == "host3"
    assert after.vm("peer").host == "host2"
    assert topology.vm("mover").host == "host1"  # a new value; the old one is unchanged


@pytest.mark.parametrize(
    ("vm", "host", "message"),
    [
        ("nobody", "host3", "no VM named 'nobody'"),
        ("mover", "host9", "no host named 'host9'"),
        ("mover", "host1", "already runs on host1"),
    ],
)
def test_moved_refuses_what_is_no_migration(vm: str, host: str, message: str) -> None:
    with pytest.raises(LabError, match=message):
        moved(load(EXAMPLES / "migration.yaml"), vm, host)


def test_an_access_port_vm_stays_where_its_vlan_is_trunked() -> None:
    topology = load(EXAMPLES / "vlan-network.yaml")
    vm = next(v for v in topology.vms if v.logical_network is not None)
    other = next(h.name for h in topology.hosts if h.name != vm.host)
    with pytest.raises(LabError, match="access port"):
        moved(topology, vm.name, other)


def test_the_placement_survives_in_the_run_directory(tmp_path: Path) -> None:
    topology = load(EXAMPLES / "migration.yaml")
    assert placement(tmp_path) == {}
    record_placement(tmp_path, "mover", "host3")
    record_placement(tmp_path, "peer", "host1")
    record_placement(tmp_path, "mover", "host2")
    assert placement(tmp_path) == {"mover": "host2", "peer": "host1"}
    again = placed(topology, placement(tmp_path))
    assert [(vm.name, vm.host) for vm in again.vms] == [("mover", "host2"), ("peer", "host1")]
    assert placed(topology, {"mover": "gone", "ghost": "host1"}) == topology


def test_a_broken_placement_file_places_nothing(tmp_path: Path) -> None:
    (tmp_path / "placement.json").write_text("[not json")
    assert placement(tmp_path) == {}


def test_the_put_is_the_get_with_the_new_server_and_without_read_only_state() -> None:
    got: dict[str, Any] = {
        "resourceRef": "/networkInterfaces/mover",
        "resourceId": "mover",
        "etag": 'W/"1"',
        "instanceId": "abc",
        "tags": {"tier": "web"},
        "properties": {
            "server": {"resourceRef": "/servers/host1"},
            "provisioningState": "Succeeded",
            "configurationState": {"status": "Success"},
            "privateMacAddress": "001DD8B70001",
            "ipConfigurations": [{"resourceId": "ip1", "properties": {}}],
        },
    }
    resource = moved_document(got, "host3")
    assert resource.path == "/networkInterfaces/mover"
    assert resource.body == {
        "resourceId": "mover",
        "tags": {"tier": "web"},
        "properties": {
            "server": {"resourceRef": "/servers/host3"},
            "privateMacAddress": "001DD8B70001",
            "ipConfigurations": [{"resourceId": "ip1", "properties": {}}],
        },
    }
    assert got["properties"]["server"] == {"resourceRef": "/servers/host1"}  # not changed


@pytest.mark.parametrize(
    ("rows", "wanted"),
    [
        ([], {PROGRAMMED: False, ATTACHED: False, GONE: True}),
        ([{"name": "p", "programmed": True, "attached": False}],
         {PROGRAMMED: True, ATTACHED: False, GONE: False}),
        ([{"name": "p", "programmed": False, "attached": True}],
         {PROGRAMMED: False, ATTACHED: True, GONE: False}),
        ([{"name": "q", "programmed": True, "attached": True}],
         {PROGRAMMED: False, ATTACHED: False, GONE: True}),
        ("not rows", {PROGRAMMED: False, ATTACHED: False, GONE: True}),
    ],
)  # fmt: skip
def test_port_state_reads_list_ports(rows: object, wanted: dict[str, bool]) -> None:
    assert {until: port_state(rows, "p", until) for until in wanted} == wanted
