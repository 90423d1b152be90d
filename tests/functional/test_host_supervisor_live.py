"""Real ``hnv host --driver none`` processes in temp dirs: rows in, inspection out, restarts.

Each test starts ``python3 -m openhnv host`` with its own state directory, writes the
compiler's rows for the seed's figure 8 into the host's OVSDB, and looks at them through
``hnv vfp`` / ``hnv host``. Every process started here is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from openhnv.controller.compiler.compile import compile_host
from openhnv.host import main as host_main
from openhnv.host.control import call
from openhnv.inspect import host_cmd
from openhnv.inspect import vfp_cmd as vfp_cli
from openhnv.lab import builder, daemons
from openhnv.ovsdb.client import OvsdbClient
from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.pki import init_ca, issue
from openhnv.testing.plugin import HostProcesses
from openhnv.testing.polling import eventually
from openhnv.testing.snapshots import figure8, instance_id

WAIT = 30.0
REFUSED_WAIT = 2.0
SQL_NIC = instance_id("/networkInterfaces/contoso-sql")
FAB_NIC = instance_id("/networkInterfaces/fabrikam-sql")
SQL_MAC, FAB_MAC = "00:1d:d8:07:00:11", "00:1d:d8:07:00:21"


def write_figure8(state_dir: Path) -> None:
    with OvsdbClient(f"unix:{state_dir}/ovsdb.sock") as client:
        client.wait_synced(WAIT)
        client.replace_all(compile_host(figure8(), "host1"))


def mapping_count(state_dir: Path) -> int:
    return len(call(state_dir, "pa-ca-mapping"))


def ports(state_dir: Path) -> dict[str, Any]:
    return {p["name"]: p for p in call(state_dir, "list-ports")}


NULL_PORTS = ("--null-port", f"{SQL_NIC}={SQL_MAC}", "--null-port", f"{FAB_NIC}={FAB_MAC}")


def test_rows_written_to_the_hosts_ovsdb_show_in_hnv_vfp_and_hnv_host(
    host_processes: HostProcesses, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "h1"
    host_processes.start(state, *NULL_PORTS)
    write_figure8(state)
    eventually(lambda: mapping_count(state) == 4, "figure 8's four mappings")
    eventually(lambda: ports(state).get(SQL_NIC, {}).get("programmed"), "the SQL port programmed")

    assert host_cmd.main(["pa-ca-mapping", "--state-dir", str(state), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    sql = next(r for r in rows if r["ca_mac_address"] == SQL_MAC)
    assert (sql["ca_ip_address"], sql["virtual_subnet_id"], sql["pa_ip_address"]) == (
        "10.1.1.11",
        5001,
        "192.168.1.10",
    )
    assert sql["mapping_type"] == "local"
    web = next(r for r in rows if r["ca_mac_address"] == "00:1d:d8:07:00:12")
    assert web["pa_ip_address"] == "192.168.2.20"
    assert web["mapping_type"] == "remote"

    assert host_cmd.main(["provider-addresses", "--state-dir", str(state)]) == 0
    assert "192.168.1.10" in capsys.readouterr().out

    assert vfp_cli.main(["--state-dir", str(state), "list-layers", "--port", SQL_NIC]) == 0
    assert "ACL_NIC" in capsys.readouterr().out
    assert vfp_cli.main(["--state-dir", str(state), "counters", "--port", "uplink"]) == 0
    assert "uplink" in capsys.readouterr().out
    trace = call(
        state, "trace", port=SQL_NIC, tokens=["src=10.1.1.11", "dst=10.1.1.12", "dport=1433"]
    )
    # the none driver resolves no next hop: the PA gateway's MAC is unknown
    assert trace["result"] == "drop(no_pa_route)"
    assert [s["layer"] for s in trace["steps"]][:2] == ["ACL_NIC", "VNET"]
    status = call(state, "status")
    assert status["name"] == "host1"
    assert status["agent"]["connected"] is True
    assert status["ovsdb_server"]["running"] is True


def test_a_killed_ovsdb_server_is_restarted_with_its_rows(
    host_processes: HostProcesses, tmp_path: Path
) -> None:
    state = tmp_path / "h1"
    host = host_processes.start(state, *NULL_PORTS)
    write_figure8(state)
    eventually(lambda: mapping_count(state) == 4, "four mappings")
    first = host.ovsdb_pid()
    assert first is not None
    os.kill(first, signal.SIGKILL)
    eventually(
        lambda: host.ovsdb_pid() not in (None, first) and builder.alive(host.ovsdb_pid() or 0),
        "a new ovsdb-server",
    )
    eventually(lambda: call(state, "status")["ovsdb_server"]["restarts"] >= 1, "restart counted")
    with OvsdbClient(f"unix:{state}/ovsdb.sock") as client:
        client.wait_synced(WAIT)
        assert len(client.snapshot(["Ucast_Macs_Remote"])["Ucast_Macs_Remote"]) == 4
    eventually(lambda: call(state, "status")["agent"]["connected"] is True, "agent reconnected")
    assert mapping_count(state) == 4


def test_a_restarted_host_rebuilds_its_state_from_ovsdb(
    host_processes: HostProcesses, tmp_path: Path
) -> None:
    state = tmp_path / "h1"
    first = host_processes.start(state, *NULL_PORTS)
    write_figure8(state)
    eventually(lambda: mapping_count(state) == 4, "four mappings")
    before = {k: v["layers"] for k, v in ports(state).items()}
    assert first.stop() == 0
    second = host_processes.start(state, *NULL_PORTS)
    assert second.ready
    assert mapping_count(state) == 4  # programmed before "ready"
    assert {k: v["layers"] for k, v in ports(state).items()} == before


def test_sigterm_leaves_no_process_and_no_socket(
    host_processes: HostProcesses, tmp_path: Path
) -> None:
    state = tmp_path / "h1"
    host = host_processes.start(state)
    ovsdb = host.ovsdb_pid()
    assert ovsdb is not None
    assert builder.alive(ovsdb)
    assert host.stop(signal.SIGTERM) == 0
    assert not builder.alive(host.pid)
    eventually(lambda: not builder.alive(ovsdb), "ovsdb-server gone", timeout=10)
    assert not (state / "control.sock").exists()
    assert not (state / "host.pid").exists()
    assert (state / "ms_vtep.db").exists()  # the databases stay


def test_sigint_stops_cleanly_too(host_processes: HostProcesses, tmp_path: Path) -> None:
    host = host_processes.start(tmp_path / "h1")
    ovsdb = host.ovsdb_pid()
    assert host.stop(signal.SIGINT) == 0
    eventually(lambda: ovsdb is None or not builder.alive(ovsdb), "ovsdb-server gone", timeout=10)


def test_a_second_host_on_the_same_state_dir_is_refused(
    host_processes: HostProcesses, tmp_path: Path
) -> None:
    state = tmp_path / "h1"
    first = host_processes.start(state)
    second = host_processes.start(state, require_ready=False)
    assert second.process.wait(WAIT) == 1
    assert f"a host is already running in {state} (pid {first.pid})" in second.stderr()
    assert call(state, "ping")["pid"] == first.pid


def test_tcp_listener_serves_the_controller(host_processes: HostProcesses, tmp_path: Path) -> None:
    port = daemons.free_port()
    state = tmp_path / "h1"
    host_processes.start(state, "--listen", f"tcp:127.0.0.1:{port}")
    with OvsdbClient(f"tcp:127.0.0.1:{port}") as client:
        client.wait_synced(WAIT)
        client.replace_all(compile_host(figure8(), "host1"))
    eventually(lambda: mapping_count(state) == 4, "mappings through the TCP listener")


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (("--listen", "tcp:nowhere"), "bad listen address 'tcp:nowhere'"),
        (("--listen", "ssl:127.0.0.1:6640"), "needs --pki DIR"),
    ],
)
def test_start_errors_are_one_clear_line(
    tmp_path: Path, extra: tuple[str, ...], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "h1"
    argv = ["--name", "host1", "--state-dir", str(state), *extra]
    assert host_main.main(argv) == 1
    err = capsys.readouterr().err
    assert says in err
    assert len(err.strip().splitlines()) == 1
    assert not (state / "host.pid").exists()


def test_missing_ovsdb_server_binary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert host_main.main(["--name", "h", "--state-dir", str(tmp_path / "s")]) == 1
    assert "ovsdb-server not found on PATH: install the Debian package openvswitch-common" in (
        capsys.readouterr().err
    )


def test_unwritable_state_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert host_main.main(["--name", "h", "--state-dir", str(blocker / "state")]) == 1
    assert f"cannot use state dir {blocker / 'state'}" in capsys.readouterr().err


def test_ssl_listener_accepts_only_the_controller(
    host_processes: HostProcesses, tmp_path: Path
) -> None:
    pki = tmp_path / "pki"
    init_ca(pki)
    controller = issue(pki, "nc1", "controller")
    other_host = issue(pki, "host2", "host")
    port = daemons.free_port()
    state = tmp_path / "h1"
    host_processes.start(state, "--listen", f"ssl:127.0.0.1:{port}", "--pki", str(pki))
    assert (pki / "host1-cert.pem").is_file()  # issued by the host at start
    with OvsdbClient(f"ssl:127.0.0.1:{port}", ssl=controller) as client:
        client.wait_synced(WAIT)
        client.replace_all(compile_host(figure8(), "host1"))
    eventually(lambda: mapping_count(state) == 4, "mappings through the SSL listener")
    with (
        OvsdbClient(f"ssl:127.0.0.1:{port}", ssl=other_host) as client,
        pytest.raises(OvsdbError),
    ):
        client.wait_synced(REFUSED_WAIT)


def test_a_killed_host_leaves_ovsdb_server_that_the_next_host_adopts(
    host_processes: HostProcesses, tmp_path: Path
) -> None:
    state = tmp_path / "h1"
    first = host_processes.start(state, *NULL_PORTS)
    write_figure8(state)
    eventually(lambda: mapping_count(state) == 4, "four mappings")
    server = first.ovsdb_pid()
    first.stop(signal.SIGKILL)
    assert server is not None
    assert builder.alive(server)
    host_processes.start(state, *NULL_PORTS)
    assert mapping_count(state) == 4
    assert call(state, "status")["ovsdb_server"]["pid"] == server
