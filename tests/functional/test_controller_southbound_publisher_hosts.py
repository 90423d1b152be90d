"""The publisher against real ``hnv host --driver none`` processes: NB -> OVSDB -> agent."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from publisher_dc import WAIT, fabric, nic, provisioning, server, vnet

import openhnv
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore
from openhnv.controller.southbound.publisher import Publisher
from polling import eventually

SRC = Path(openhnv.__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(SRC))


class HostProcess:
    """One ``hnv host --driver none`` in a short temp dir."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"hnv-pub-{name}-"))
        self.process: subprocess.Popen[str] | None = None

    @property
    def remote(self) -> str:
        return f"unix:{self.dir}/ovsdb.sock"

    def start(self) -> HostProcess:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "openhnv",
                "host",
                "--name",
                self.name,
                "--state-dir",
                str(self.dir),
                "--driver",
                "none",
            ],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "ready" once serving, "" if it died
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"hnv host {self.name} did not start")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def mappings(self) -> set[tuple[str, str, str]]:
        """(CA, VSID, PA) of the agent's programmed mapping space (``hnv host pa-ca-mapping``)."""
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "openhnv",
                "host",
                "pa-ca-mapping",
                "--state-dir",
                str(self.dir),
                "--json",
            ],
            env=ENV,
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        if result.returncode != 0:
            return set()
        rows: list[dict[str, Any]] = json.loads(result.stdout)
        return {
            (str(r["ca_ip_address"]), str(r["virtual_subnet_id"]), str(r["pa_ip_address"]))
            for r in rows
        }


@pytest.fixture
def host_processes() -> Iterator[dict[str, HostProcess]]:
    made: dict[str, HostProcess] = {}
    try:
        for name in ("hp1", "hp2"):
            made[name] = HostProcess(name).start()
        yield made
    finally:
        for host in made.values():
            host.stop()
            shutil.rmtree(host.dir, ignore_errors=True)


def pa_of(service: ControllerService, name: str) -> str:
    return str(service.get(f"/servers/{name}")["properties"]["providerAddresses"][0]["address"])


def test_mappings_reach_the_agents_of_real_hosts(host_processes: dict[str, HostProcess]) -> None:
    service = ControllerService(SqliteStore(":memory:"))
    publisher = Publisher(service).start()
    try:
        fabric(service)
        for name, host in host_processes.items():
            server(service, name, host.remote)
        vnet(service, "A", "10.1.0.0/16", 5001)
        nic(service, "n1", "A", "10.1.0.11", "hp1")
        nic(service, "n2", "A", "10.1.0.12", "hp2")
        eventually(
            lambda: all(
                provisioning(service, f"/networkInterfaces/{n}") == "Succeeded"
                for n in ("n1", "n2")
            ),
            "NICs Succeeded",
        )
        pa1, pa2 = pa_of(service, "hp1"), pa_of(service, "hp2")
        want = {("10.1.0.11", "5001", pa1), ("10.1.0.12", "5001", pa2)}
        for host in host_processes.values():
            eventually(lambda h=host: want <= h.mappings(), f"{host.name}'s agent programmed")
        # hp2 restarts (same state dir) while n1 moves to hp2: both agents follow.
        host_processes["hp2"].stop()
        nic(service, "n1", "A", "10.1.0.11", "hp2")
        host_processes["hp2"].start()
        moved = {("10.1.0.11", "5001", pa2), ("10.1.0.12", "5001", pa2)}
        eventually(lambda: moved <= host_processes["hp2"].mappings(), "hp2 holds n1 and n2")
        # hp1 has no NIC in A any more: its agent drops A's mappings.
        eventually(lambda: not host_processes["hp1"].mappings(), "hp1 forgets A")
        assert provisioning(service, "/networkInterfaces/n1") == "Succeeded"
    finally:
        publisher.stop()
