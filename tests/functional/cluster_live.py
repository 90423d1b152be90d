"""Controller replicas as real ``hnv controller --store etcd://...`` processes, for tests.

``Replicas(cluster, count, directory)`` starts ``count`` controllers on free loopback
ports against one etcd cluster, each logging to its own file; they are killed by pid
(SIGKILL, as a crash) or stopped (SIGTERM: the leader resigns). ``leader()`` asks the
diagnostics path of the live replicas.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

import openhnv
from openhnv.lab.etcd import EtcdCluster, free_ports

SRC = Path(openhnv.__file__).resolve().parents[1]
DIAGNOSTICS = "/networking/v1/diagnostics/networkControllerState"
START_WAIT = 30.0


class ReplicaProcess:
    """One ``hnv controller`` replica."""

    def __init__(self, name: str, store: str, port: int, log: Path, *extra: str) -> None:
        self.name = name
        self.url = f"http://127.0.0.1:{port}"
        self.base = self.url + "/networking/v1"
        self.log = log
        argv = [sys.executable, "-m", "openhnv", "controller", "--listen", f"127.0.0.1:{port}"]
        argv += ["--store", store, "--replica-id", name, *extra]
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                argv,
                env=dict(os.environ, PYTHONPATH=str(SRC)),
                stdout=out,
                stderr=out,
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def diagnostics(self) -> dict[str, Any] | None:
        """The replica's networkControllerState properties, or None if it does not answer."""
        try:
            answer = httpx.get(self.url + DIAGNOSTICS, timeout=5.0)
        except httpx.HTTPError:
            return None
        if answer.status_code != 200:
            return None
        found: dict[str, Any] = answer.json()["properties"]
        return found

    def wait_serving(self) -> None:
        deadline = time.monotonic() + START_WAIT
        while self.diagnostics() is None:
            if not self.alive:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-500:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not serving: {self.log.read_text()[-500:]}")
            time.sleep(0.1)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, sig)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()


class Replicas:
    """``count`` controller replicas on one etcd cluster."""

    def __init__(self, cluster: EtcdCluster, count: int, directory: Path, *extra: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.replicas = [
            ReplicaProcess(f"c{i + 1}", cluster.url, port, directory / f"c{i + 1}.log", *extra)
            for i, port in enumerate(free_ports(count))
        ]
        try:
            for replica in self.replicas:
                replica.wait_serving()
        except BaseException:
            self.stop()
            raise

    def live(self) -> list[ReplicaProcess]:
        return [r for r in self.replicas if r.alive]

    def leader(self) -> ReplicaProcess | None:
        """The live replica that says it publishes, if one does."""
        for replica in self.live():
            found = replica.diagnostics()
            if found is not None and found["publishing"]:
                return replica
        return None

    def wait_leader(self, what: str, timeout: float = START_WAIT) -> ReplicaProcess:
        """The replica that publishes, once one does; AssertionError naming ``what``."""
        deadline = time.monotonic() + timeout
        while (found := self.leader()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout} s: {what}")
            time.sleep(0.02)
        return found

    def stop(self) -> None:
        for replica in self.replicas:
            replica.kill(signal.SIGTERM)
