"""OVSDB over SSL with certificates from hnv pki: the host accepts only the controller."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from openhnv.ovsdb.client import ConnectionState, OvsdbClient
from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.pki import ca_cert_path, init_ca, issue, ssl_files
from openhnv.ovsdb.rows import RowChange
from openhnv.ovsdb.server import OvsdbServer, SslFiles

WAIT = 15.0
REFUSED_WAIT = 2.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    directory = tmp_path / "pki"
    init_ca(directory)
    issue(directory, "host1", "host")
    issue(directory, "nc1", "controller")
    return directory


@pytest.fixture
def ssl_server(tmp_path: Path, pki: Path) -> Iterator[tuple[OvsdbServer, str]]:
    port = free_port()
    host = ssl_files(pki, "host1", "host")
    server = OvsdbServer(tmp_path / "host1", [f"pssl:{port}:127.0.0.1"], ssl=host)
    server.start()
    yield server, f"ssl:127.0.0.1:{port}"
    server.stop()


def test_the_controller_certificate_is_accepted(
    ssl_server: tuple[OvsdbServer, str], pki: Path
) -> None:
    _, remote = ssl_server
    with OvsdbClient(remote, ssl=ssl_files(pki, "nc1", "controller")) as client:
        client.wait_synced(WAIT)
        client.apply([RowChange("insert", "Logical_Switch", "5001", {"name": "5001"})])
        assert set(client.snapshot(["Logical_Switch"])["Logical_Switch"]) == {"5001"}


def test_a_certificate_from_another_ca_is_refused(
    ssl_server: tuple[OvsdbServer, str], tmp_path: Path, pki: Path
) -> None:
    server, remote = ssl_server
    rogue_dir = tmp_path / "rogue"
    init_ca(rogue_dir, label="rogue")
    rogue = issue(rogue_dir, "nc1", "controller")
    # The rogue client even trusts the right CA: the server still refuses its cert.
    impostor = SslFiles(rogue.private_key, rogue.certificate, ca_cert_path(pki, "host"))
    with OvsdbClient(remote, ssl=impostor) as client:
        with pytest.raises(OvsdbError, match="not synced"):
            client.wait_synced(REFUSED_WAIT)
        assert client.state is ConnectionState.CONNECTING
    assert "SSL_accept" in server.log_path.read_text(encoding="utf-8")


def test_a_server_certificate_from_another_ca_is_refused(
    ssl_server: tuple[OvsdbServer, str], tmp_path: Path, pki: Path
) -> None:
    _, remote = ssl_server
    rogue_dir = tmp_path / "rogue"
    init_ca(rogue_dir, label="rogue")
    # A client that trusts only another PKI's host CA does not accept the host's cert.
    good = ssl_files(pki, "nc1", "controller")
    client_files = SslFiles(good.private_key, good.certificate, ca_cert_path(rogue_dir, "host"))
    with (
        OvsdbClient(remote, ssl=client_files) as client,
        pytest.raises(OvsdbError, match="not synced"),
    ):
        client.wait_synced(REFUSED_WAIT)


def test_another_hosts_certificate_is_refused(
    ssl_server: tuple[OvsdbServer, str], pki: Path
) -> None:
    server, remote = ssl_server
    # host2 is one of ours, but only the controller may write host1's database.
    host2 = issue(pki, "host2", "host")
    as_host2 = SslFiles(host2.private_key, host2.certificate, ca_cert_path(pki, "host"))
    with OvsdbClient(remote, ssl=as_host2) as client, pytest.raises(OvsdbError, match="not synced"):
        client.wait_synced(REFUSED_WAIT)
    assert "SSL_accept" in server.log_path.read_text(encoding="utf-8")


def test_ssl_remote_without_files_is_refused() -> None:
    with pytest.raises(OvsdbError, match="needs SSL key, certificate and CA files"):
        OvsdbClient("ssl:127.0.0.1:6640")
