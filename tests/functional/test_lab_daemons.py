"""The lab's controller daemon: started on a free port, found by URL, stopped by pid."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

import httpx
import pytest

from openhnv.lab import builder, daemons
from openhnv.lab.documents import Resource
from openhnv.lab.errors import LabError
from openhnv.lab.rest import ControllerClient


def test_controller_starts_serves_and_is_stopped_by_clean(tmp_path: Path) -> None:
    lab = f"d{secrets.token_hex(3)}"
    run_dir = builder.run_dir_of(lab, tmp_path)
    run_dir.mkdir()
    try:
        url = daemons.start_controller(run_dir)
        assert daemons.controller_url(run_dir) == url
        pid = daemons.recorded(run_dir)[daemons.CONTROLLER]
        assert builder.alive(pid)
        assert url.startswith("https://")
        with httpx.Client(verify=False) as anonymous:  # who is refused, not who serves
            assert anonymous.get(url + "/networking/v1/servers").status_code == 401
        client = ControllerClient.connect(url, access=daemons.controller_access(run_dir))
        try:
            config = client.get("/virtualNetworkManager/configuration")
            assert config["properties"]["networkVirtualizationProtocol"] == "Vxlan"
        finally:
            client.close()
        assert (run_dir / daemons.CONTROLLER_DB).exists()
    finally:
        report = builder.clean(builder.LabNames(lab).prefix, tmp_path)
    assert pid in report.daemons
    assert not builder.alive(pid)
    assert not run_dir.exists()


def test_a_daemon_that_dies_is_reported_with_its_last_log_line(tmp_path: Path) -> None:
    process = daemons.spawn(tmp_path, "broken", daemons.hnv_argv("controller", "--listen", "x"))
    log = daemons.logfile(tmp_path, "broken")
    with pytest.raises(LabError, match=r"broken exited with status 2: .*must be HOST:PORT"):
        daemons.wait_ready(process, "broken", log, lambda: False, 30)
    assert daemons.recorded(tmp_path) == {"broken": process.pid}


def test_a_restarted_daemon_is_ready_only_once_it_says_so_again(tmp_path: Path) -> None:
    # A host killed with SIGKILL leaves its log (and its ovsdb-server's socket): the
    # "ready" of its earlier life must not make the restarted one ready at once.
    log = tmp_path / "host-h1.log"
    log.write_text("starting\nready\n")
    since = log.stat().st_size
    assert daemons.printed_ready(log)()
    ready = daemons.printed_ready(log, since=since)
    assert not ready()
    with open(log, "a") as f:
        f.write("starting\nready\n")
    assert ready()


def test_free_port_is_bindable() -> None:
    port = daemons.free_port()
    assert 0 < port < 65536
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # raises if the port is taken


def test_a_controller_cluster_starts_serves_from_any_replica_and_is_stopped_by_clean(
    tmp_path: Path,
) -> None:
    lab = f"d{secrets.token_hex(3)}"
    run_dir = builder.run_dir_of(lab, tmp_path)
    run_dir.mkdir()
    try:
        urls = daemons.start_cluster(run_dir, 3)
        assert daemons.controller_urls(run_dir) == urls
        assert len(set(urls)) == 3
        recorded = daemons.recorded(run_dir)
        names = {"etcd-1", "etcd-2", "etcd-3", "controller-1", "controller-2", "controller-3"}
        assert names <= set(recorded)
        pids = [recorded[n] for n in names]
        assert all(builder.alive(pid) for pid in pids)
        client = ControllerClient.connect_any(urls, access=daemons.controller_access(run_dir))
        try:
            body = {"properties": {"networkVirtualizationEnabled": "True", "subnets": []}}
            client.put(Resource("logicalNetworks", "HNVPA", body))
            builder.stop_pidfile(daemons.pidfile(run_dir, "controller-1"))  # first one down
            assert client.get("/logicalNetworks/HNVPA")["resourceId"] == "HNVPA"
            publishing = [_publishing(u, run_dir) for u in urls[1:]]
            assert publishing.count(True) <= 1
        finally:
            client.close()
    finally:
        report = builder.clean(builder.LabNames(lab).prefix, tmp_path)
    assert set(pids) <= set(report.daemons) | {recorded["controller-1"]}
    assert not any(builder.alive(pid) for pid in pids)
    assert not run_dir.exists()


def _publishing(url: str, run_dir: Path) -> bool:
    client = ControllerClient.connect(url, access=daemons.controller_access(run_dir))
    try:
        return bool(client.diagnostics()["properties"]["publishing"])
    finally:
        client.close()
