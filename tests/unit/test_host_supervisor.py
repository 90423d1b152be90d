"""HostProcess configuration without daemons: drivers, listeners, SSL files, state dir."""

from __future__ import annotations

import fcntl
import os
import re
import socket
from pathlib import Path

import pytest

from openhnv.cli import main as hnv
from openhnv.host import main as host_main
from openhnv.host.errors import HostError
from openhnv.host.supervisor import (
    HostConfig,
    HostProcess,
    check_listen_ports,
    host_ssl,
    make_driver,
    ovsdb_remotes,
)
from openhnv.ovsdb.pki import init_ca
from openhnv.vfp.limits import DEFAULT_LIMITS, DEFAULT_MAX_FLOWS
from openhnv.vswitch.null import NullDriver


def config(tmp_path: Path, **kw: object) -> HostConfig:
    return HostConfig(name="host1", state_dir=tmp_path / "state", **kw)  # type: ignore[arg-type]


def test_the_none_driver_reports_the_null_ports(tmp_path: Path) -> None:
    driver = make_driver(config(tmp_path, null_ports=(("p1", "00:1d:d8:00:00:01"),)))
    assert isinstance(driver, NullDriver)

    class Sink:
        ports: dict[str, str] = {}

        def port_added(self, port: str, mac: str) -> None:
            self.ports[port] = mac

    sink = Sink()
    driver.open(sink)  # type: ignore[arg-type]
    assert sink.ports == {"p1": "00:1d:d8:00:00:01"}


def test_driver_errors(tmp_path: Path) -> None:
    with pytest.raises(HostError, match="--null-port is for --driver none only"):
        make_driver(config(tmp_path, driver="linux", null_ports=(("p", "00:00:00:00:00:01"),)))
    with pytest.raises(HostError, match="unknown driver 'dpdk': expected one of none, linux"):
        make_driver(config(tmp_path, driver="dpdk"))
    with pytest.raises(HostError, match="unknown driver 'dpdk'"):
        HostProcess(config(tmp_path, driver="dpdk"))
    with pytest.raises(HostError, match="--xdp-meter needs --driver linux"):
        make_driver(config(tmp_path, xdp_meter=True))


def test_remotes_always_serve_ovsdb_sock_then_each_listen(tmp_path: Path) -> None:
    cfg = config(tmp_path, listen=("tcp:127.0.0.1:6640", "ssl:10.0.0.1:6641", "unix:/x/c.sock"))
    assert ovsdb_remotes(cfg) == [
        f"punix:{tmp_path / 'state' / 'ovsdb.sock'}",
        "ptcp:6640:127.0.0.1",
        "pssl:6641:10.0.0.1",
        "punix:/x/c.sock",
    ]
    with pytest.raises(HostError, match=re.escape("--listen: bad listen address 'tcp:1.2.3.4'")):
        ovsdb_remotes(config(tmp_path, listen=("tcp:1.2.3.4",)))


def test_ssl_files_trust_the_controller_ca_and_are_issued_when_missing(tmp_path: Path) -> None:
    assert host_ssl(config(tmp_path, listen=("tcp:127.0.0.1:6640",))) is None
    with pytest.raises(HostError, match="needs --pki DIR"):
        host_ssl(config(tmp_path, listen=("ssl:127.0.0.1:6640",)))
    pki = tmp_path / "pki"
    with pytest.raises(HostError, match="no controller CA certificate"):
        host_ssl(config(tmp_path, listen=("ssl:127.0.0.1:6640",), pki=pki))
    init_ca(pki)
    files = host_ssl(config(tmp_path, listen=("ssl:127.0.0.1:6640",), pki=pki))
    assert files is not None
    assert files.certificate == pki / "host1-cert.pem"
    assert files.certificate.is_file()
    assert files.ca_cert == pki / "controllerca-cert.pem"
    (pki / "hostca-key.pem").unlink()  # an existing certificate needs no CA key
    assert host_ssl(config(tmp_path, listen=("ssl:127.0.0.1:6640",), pki=pki)) == files


def test_a_locked_state_dir_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    with open(state / "host.pid", "w", encoding="ascii") as held:
        held.write("4242\n")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(HostError, match=f"a host is already running in {state} \\(pid 4242\\)"):
            HostProcess(config(tmp_path)).start()
    assert os.path.exists(state / "host.pid")  # not ours to remove


def test_a_state_dir_too_long_for_unix_sockets(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 100)
    with pytest.raises(HostError, match="longer than 107 bytes: use a shorter --state-dir"):
        HostProcess(HostConfig(name="h", state_dir=deep)).start()
    assert not (deep / "host.pid").exists()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--state-dir", "/tmp/x"], "--name"),
        (["--name", "h"], "--state-dir"),
        (["--name", "h", "--state-dir", "/tmp/x", "--driver", "dpdk"], "invalid choice"),
        (["--name", "h", "--state-dir", "/tmp/x", "--null-port", "p1"], "expected PORT=MAC"),
        (["--name", "h", "--state-dir", "/tmp/x", "--null-port", "p1=zz"], "mac='zz'"),
        (["--name", "h", "--state-dir", "/tmp/x", "--max-flows-per-port", "-1"], "whole number"),
        (["--name", "h", "--state-dir", "/tmp/x", "--arp-rate", "nan"], "frames a second"),
    ],
)
def test_host_argument_errors_exit_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert host_main.main(argv) == 2
    assert says in capsys.readouterr().err


def test_host_query_argument_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """``hnv host <query>`` reaches the operator command, not the daemon's parser."""
    assert hnv(["host", "status", "--bogus"]) == 2
    assert "usage: hnv host status" in capsys.readouterr().err


def test_a_busy_or_foreign_listen_address_is_refused() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        busy_text = f"--listen tcp:127.0.0.1:{port}: Address already in use"
        with pytest.raises(HostError, match=re.escape(busy_text)):
            check_listen_ports([f"tcp:127.0.0.1:{port}", "unix:/x"])
    with pytest.raises(HostError, match=re.escape("--listen ssl:192.0.2.1:6640: Cannot assign")):
        check_listen_ports(["ssl:192.0.2.1:6640"])
    check_listen_ports([f"tcp:127.0.0.1:{port}"])  # free again


def test_the_abuse_limits_of_the_command_line_turn_off_at_0_and_burst_twice_the_rate() -> None:
    args = host_main.build_parser().parse_args(["--name", "h", "--state-dir", "/tmp/x"])
    assert (args.max_flows_per_port, args.new_flow_rate) == (DEFAULT_MAX_FLOWS, 500.0)
    limits = host_main.port_limits(0, 100.0, 0.0, 0.4)
    assert limits.max_flows is None
    assert (limits.new_flow_rate, limits.new_flow_burst) == (100.0, 200)
    assert limits.broadcast_rate == 0.0
    assert limits.arp_burst == 1
    assert HostConfig(name="h", state_dir=Path("/x")).limits == DEFAULT_LIMITS


def test_the_xdp_meter_is_off_unless_asked() -> None:
    parse = host_main.build_parser().parse_args
    assert parse(["--name", "h", "--state-dir", "/tmp/x"]).xdp_meter is False
    assert parse(["--name", "h", "--state-dir", "/tmp/x", "--xdp-meter"]).xdp_meter is True
    assert HostConfig(name="h", state_dir=Path("/x")).xdp_meter is False
