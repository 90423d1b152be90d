"""hnv vfp, hnv host <query> and hnv trace against a control socket serving a real switch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_fixtures import AgentState, RingCountingDriver, host_a, process_status
from vfp_frames import PA_A, PA_B, VM1, VM5, tcp_frame

from openhnv.host.control import ControlServer, socket_path
from openhnv.host.frame_spec import parse_description
from openhnv.host.queries import host_handlers
from openhnv.host.tracing import uplink_frame
from openhnv.inspect import host_cmd
from openhnv.inspect import trace_cmd as trace_cli
from openhnv.inspect import vfp_cmd as vfp_cli
from openhnv.vswitch.driver import RingCounters

PROBLEM = {"table": "FW_Rules", "uuid": "u1", "key": "r1", "reason": "bad protocol 'x'"}


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    switch, _ = host_a()
    handlers = host_handlers(switch, AgentState([PROBLEM]), process_status=process_status)
    with ControlServer(socket_path(tmp_path), handlers):
        yield tmp_path


def out(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_list_ports_table(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert vfp_cli.main(["--state-dir", str(state_dir), "list-ports"]) == 0
    lines = out(capsys)[0].splitlines()
    assert lines[0].split() == [
        "Port",
        "MAC",
        "VSID",
        "RDID",
        "IPs",
        "Enabled",
        "Attached",
        "Layers",
        "Flows",
        "Gen",
    ]
    vm1 = next(line for line in lines if line.startswith("vm1 "))
    assert vm1.split()[:5] == ["vm1", VM1[1], "5001", "rdid-contoso", "10.1.1.11"]


def test_options_after_the_command_and_json(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        vfp_cli.main(["list-layers", "--port", "vm1", "--state-dir", str(state_dir), "--json"]) == 0
    )
    rows = json.loads(out(capsys)[0])
    assert [r["name"] for r in rows] == ["ACL_NIC", "ACL_SUBNET", "VNET"]


def test_state_dir_from_the_environment(
    state_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HNV_STATE_DIR", str(state_dir))
    assert (
        vfp_cli.main(["list-rules", "--port", "vm1", "--layer", "VNET", "--group", "out-v4"]) == 0
    )
    text = out(capsys)[0]
    assert "route" in text
    assert "l2" in text
    assert "Conditions" in text.splitlines()[0]


def test_counters_of_the_uplink(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert vfp_cli.main(["--state-dir", str(state_dir), "counters", "--port", "uplink"]) == 0
    pairs = [line.split(" : ") for line in out(capsys)[0].splitlines()]
    fields = {name.strip(): value for name, value in pairs}
    assert fields["port"] == "uplink"
    assert {"packets_in", "packets_out", "uft_hits", "flows"} <= set(fields)


def test_every_vfp_command_runs(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["list-spaces"],
        ["list-mappings"],
        ["list-mappings", "--port", "vm1"],
        ["list-groups", "--port", "vm1", "--layer", "ACL_NIC"],
        ["list-flows", "--port", "vm1", "--limit", "5"],
        ["rule-counters", "--port", "vm1"],
    ):
        assert vfp_cli.main(["--state-dir", str(state_dir), *argv]) == 0, argv
    assert out(capsys)[1] == ""


def test_host_refusal_is_one_line_and_status_1(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert vfp_cli.main(["--state-dir", str(state_dir), "list-layers", "--port", "vm9"]) == 1
    stdout, stderr = out(capsys)
    assert stdout == ""
    assert stderr.startswith("hnv vfp: port='vm9': no such port")
    assert len(stderr.splitlines()) == 1


def test_no_host_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert vfp_cli.main(["--state-dir", str(tmp_path), "list-ports"]) == 1
    assert f"no host is running in {tmp_path}" in out(capsys)[1]
    assert host_cmd.main(["status", "--state-dir", str(tmp_path)]) == 1
    assert (
        trace_cli.main(
            ["--state-dir", str(tmp_path), "--port", "vm1", "src=10.0.0.1", "dst=10.0.0.2"]
        )
        == 1
    )


def test_list_flows_shows_and_filters_the_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    switch, driver = host_a()
    handlers = host_handlers(switch, AgentState([]), process_status=process_status)
    syn = tcp_frame(VM1[1], VM5[1], VM1[2], VM5[2], 4000, 22)  # nobody answers it
    driver.inject_from_port("vm1", syn)
    base = ["--state-dir", str(tmp_path), "list-flows", "--port", "vm1"]
    with ControlServer(socket_path(tmp_path), handlers):
        assert vfp_cli.main(base) == 0
        lines = out(capsys)[0].splitlines()
        assert lines[0].split()[:4] == ["Dir", "Flow", "State", "Result"]
        assert lines[2].split()[0] == "out"
        assert "syn-sent" in lines[2].split()
        assert vfp_cli.main([*base, "--state", "established,closing"]) == 0
        assert out(capsys)[0].splitlines() == ["(none)"]
        assert vfp_cli.main([*base, "--json", "--state", "syn-sent"]) == 0
        assert [r["state"] for r in json.loads(out(capsys)[0])] == ["syn-sent"]
        assert vfp_cli.main([*base, "--state", "syn"]) == 1
        assert "argument state='syn': states are unopened, closing," in out(capsys)[1]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["list-nothing"],
        ["list-layers"],
        ["list-groups", "--port", "vm1"],
        ["list-flows", "--port", "vm1", "--limit", "many"],
    ],
)
def test_vfp_argument_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert vfp_cli.main(["--state-dir", "/nonexistent", *argv]) == 2
    assert "usage: hnv vfp" in out(capsys)[1]


def test_list_rules_layer_without_group(capsys: pytest.CaptureFixture[str]) -> None:
    assert vfp_cli.main(["list-rules", "--port", "vm1", "--layer", "VNET"]) == 2
    assert "--layer and --group together" in out(capsys)[1]


def test_pa_ca_mapping_table(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert host_cmd.main(["pa-ca-mapping", "--state-dir", str(state_dir)]) == 0
    lines = out(capsys)[0].splitlines()
    assert lines[0].startswith("CA IP Address  CA MAC Address     Virtual Subnet ID  PA IP Address")
    row = next(line for line in lines if VM1[1] in line).split()
    assert row[:6] == ["10.1.1.11", VM1[1], "5001", PA_A, "vxlan", "local"]


def test_pa_ca_mapping_filters(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["pa-ca-mapping", "--state-dir", str(state_dir), "--json", "--ca", "10.1.1.11"]
    assert host_cmd.main([*argv, "--vsid", "5001"]) == 0
    rows = json.loads(out(capsys)[0])
    assert [(r["ca_ip_address"], r["virtual_subnet_id"]) for r in rows] == [("10.1.1.11", 5001)]
    assert host_cmd.main(["pa-ca-mapping", "--state-dir", str(state_dir), "--vsid", "x"]) == 2


def test_provider_addresses_status_problems(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert host_cmd.main(["provider-addresses", "--state-dir", str(state_dir)]) == 0
    text = out(capsys)[0]
    assert text.splitlines()[0].split()[:2] == ["ProviderAddress", "MAC"]
    assert PA_A in text
    assert "255.255.255.0" in text
    assert "VLAN7" in text
    assert host_cmd.main(["status", "--state-dir", str(state_dir), "--json"]) == 0
    assert json.loads(out(capsys)[0])["agent"]["connected"] is True
    assert host_cmd.main(["problems", "--state-dir", str(state_dir)]) == 0
    assert "bad protocol 'x'" in out(capsys)[0]


def test_trace_text_and_json(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "--state-dir",
        str(state_dir),
        "--port",
        "vm1",
        "src=10.1.1.11",
        "dst=10.1.1.12",
        "proto=tcp",
        "dport=1433",
    ]
    assert trace_cli.main(argv) == 0
    lines = out(capsys)[0].splitlines()
    assert lines[0].startswith(f"frame: {VM1[1]} > ")
    assert lines[1] == "vm1 out: tcp 10.1.1.11:49152 -> 10.1.1.12:1433"
    assert lines[-1] == f"  result: transmit from PA {PA_A} to PA {PA_B}"
    assert trace_cli.main(["--json", *argv]) == 0
    assert json.loads(out(capsys)[0])["result"] == f"transmit from PA {PA_A} to PA {PA_B}"


def test_trace_argument_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert trace_cli.main(["--port", "vm1", "src=10.1.1.11", "dst=10.1.1.12", "dport=x"]) == 2
    assert "hnv trace: dport='x': not a number" in out(capsys)[1]
    assert trace_cli.main(["src=10.1.1.11", "dst=10.1.1.12"]) == 2
    assert "--port" in out(capsys)[1]
    assert trace_cli.main(["--port", "vm1", "--direction", "up", "src=1.1.1.1", "dst=1.1.1.2"]) == 2


def test_uplink_counters_show_a_spoofed_source_drop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    switch, driver = host_a()
    tokens = ["src=10.1.1.12", "dst=10.1.1.11", "vsid=5001", "outer_src=192.168.1.99"]
    driver.inject_from_uplink(switch.inspect(lambda e: uplink_frame(e, parse_description(tokens))))
    handlers = host_handlers(switch, AgentState(), process_status=process_status)
    with ControlServer(socket_path(tmp_path), handlers):
        assert vfp_cli.main(["--state-dir", str(tmp_path), "counters", "--port", "uplink"]) == 0
    lines = out(capsys)[0].splitlines()
    assert any(line.split() == ["drop:spoofed_source", ":", "1"] for line in lines), lines


RING = {"rx_frames": 40, "rx_gso_frames": 2, "rx_gso_segments": 30, "rx_gso_unsupported": 1}


@pytest.fixture
def counting_state_dir(tmp_path: Path) -> Iterator[Path]:
    """A host whose driver's rings counted: VM1's port, and uplinks up0 and up1."""
    uplinks = {"up1": {**RING, "rx_frames": 7}, "up0": {**RING, "rx_copy_refused": 3}}
    switch, _ = host_a(RingCountingDriver(RingCounters({VM1[0]: RING}, uplinks)))
    handlers = host_handlers(switch, AgentState(), process_status=process_status)
    with ControlServer(socket_path(tmp_path), handlers):
        yield tmp_path


def test_a_port_s_counters_show_its_ring_in_a_section_of_its_own(
    counting_state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert vfp_cli.main(["--state-dir", str(counting_state_dir), "counters", "--port", "vm1"]) == 0
    lines = out(capsys)[0].splitlines()
    at = lines.index("ring:")
    section = [line.split() for line in lines[at + 1 : at + 1 + len(RING)]]
    assert section == [[name, ":", str(value)] for name, value in RING.items()]
    assert any(line.split()[:1] == ["packets_in"] for line in lines[:at])


def test_the_uplink_s_counters_show_each_uplink_s_ring(
    counting_state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = str(counting_state_dir)
    assert vfp_cli.main(["--state-dir", state, "counters", "--port", "uplink"]) == 0
    lines = out(capsys)[0].splitlines()
    at = lines.index("rings:")
    assert lines[at + 1] == "  up0:"  # by name
    assert "    rx_copy_refused    : 3" in lines
    assert lines[at + 2 + len(RING) + 1] == "  up1:"
    assert lines[at + 2 + len(RING) + 2].split() == ["rx_frames", ":", "7"]
    assert vfp_cli.main(["--state-dir", state, "--json", "counters", "--port", "uplink"]) == 0
    counted = json.loads(out(capsys)[0])["rings"]
    assert counted["up1"] == {**RING, "rx_frames": 7}
    assert list(counted) == ["up0", "up1"]


def test_a_port_the_driver_has_no_ring_for_shows_none(
    counting_state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = str(counting_state_dir)
    assert vfp_cli.main(["--state-dir", state, "--json", "counters", "--port", VM5[0]]) == 0
    assert "ring" not in json.loads(out(capsys)[0])
