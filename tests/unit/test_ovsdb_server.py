"""The ovsdb-server supervisor's pure parts: its command line and its refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.server import OvsdbServer, SslFiles, find_binary, listen_remote


def test_command_uses_private_paths(tmp_path: Path) -> None:
    ssl = SslFiles(tmp_path / "k.pem", tmp_path / "c.pem", tmp_path / "ca.pem")
    server = OvsdbServer(tmp_path, ["ptcp:6640:127.0.0.1", "pssl:6641:127.0.0.1"], ssl=ssl)
    cmd = server.command()
    assert cmd[1:3] == [str(tmp_path / "ms_vtep.db"), str(tmp_path / "ms_firewall.db")]
    assert f"--pidfile={tmp_path}/ovsdb-server.pid" in cmd
    assert f"--unixctl={tmp_path}/ovsdb-server.ctl" in cmd
    assert f"--log-file={tmp_path}/ovsdb-server.log" in cmd
    assert f"--remote=punix:{tmp_path}/db.sock" in cmd
    assert "--remote=ptcp:6640:127.0.0.1" in cmd
    assert "--remote=pssl:6641:127.0.0.1" in cmd
    assert f"--ca-cert={tmp_path}/ca.pem" in cmd
    assert server.unix_remote == f"unix:{tmp_path}/db.sock"


def test_bad_remote_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OvsdbError, match=r"bad ovsdb-server remote 'tcp:1\.2\.3\.4:6640'"):
        OvsdbServer(tmp_path, ["tcp:1.2.3.4:6640"])


def test_ssl_remote_needs_files(tmp_path: Path) -> None:
    with pytest.raises(OvsdbError, match="needs SSL key, certificate and CA"):
        OvsdbServer(tmp_path, ["pssl:6640:127.0.0.1"])


def test_missing_binary_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(OvsdbError, match=r"ovsdb-server not found.*openvswitch-common"):
        find_binary("ovsdb-server")


def test_not_running_without_a_pidfile(tmp_path: Path) -> None:
    server = OvsdbServer(tmp_path)
    assert not server.running
    assert server.pid is None
    server.stop()  # stopping a stopped server is harmless


@pytest.mark.parametrize(
    ("listen", "remote"),
    [
        ("tcp:10.0.0.1:6640", "ptcp:6640:10.0.0.1"),
        ("ssl:0.0.0.0:6640", "pssl:6640:0.0.0.0"),
        ("unix:/run/hnv/db.sock", "punix:/run/hnv/db.sock"),
    ],
)
def test_listen_addresses_become_server_remotes(listen: str, remote: str) -> None:
    assert listen_remote(listen) == remote


@pytest.mark.parametrize("listen", ["tcp:10.0.0.1", "tcp:10.0.0.1:0", "udp:1.2.3.4:1", "unix:"])
def test_bad_listen_addresses_are_refused(listen: str) -> None:
    with pytest.raises(OvsdbError, match="bad listen address"):
        listen_remote(listen)
