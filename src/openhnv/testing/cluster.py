"""A controller cluster of real processes: ``hnv controller --store etcd://...`` replicas.

``ReplicaProcess`` is one ``hnv controller --replica-id NAME`` on a free loopback port
with whatever store arguments it is given (``--store URL`` or, alone, ``--db PATH``),
logging to its own file; it is killed by its PID (SIGKILL, as a crash) or stopped
(SIGTERM: a leader resigns). ``Replicas(cluster, count, directory)`` starts ``count``
of them on one etcd cluster and finds the one that publishes through the diagnostics
path. ``etcd_store`` gives a test a store of its own on a shared cluster.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from openhnv.controller.northbound.etcd import EtcdClient, parse_endpoints
from openhnv.controller.northbound.etcd_store import EtcdStore
from openhnv.lab import daemons
from openhnv.lab.documents import Resource
from openhnv.lab.etcd import EtcdCluster
from openhnv.lab.rest import BASE_PATH
from openhnv.testing.polling import eventually
from openhnv.testing.processes import access_args, stop_process

DIAGNOSTICS = BASE_PATH + "/diagnostics/networkControllerState"
START_WAIT = 60.0
REQUEST_TIMEOUT = 30.0
ETCD_MISSING = "etcd not installed (Debian etcd-server)"


def etcd_missing() -> str | None:
    """Why etcd clusters cannot be started here, or None when they can."""
    return ETCD_MISSING if shutil.which("etcd") is None else None


def etcd_store(cluster: EtcdCluster, timeout: float = 2.0) -> EtcdStore:
    """A store on ``cluster`` under a root of its own (``/t-<random>``)."""
    client = EtcdClient(parse_endpoints(cluster.url), timeout=timeout)
    return EtcdStore(client, f"/t-{uuid.uuid4().hex[:10]}")


class ReplicaProcess:
    """One ``hnv controller`` replica; returns once it serves (RuntimeError naming its
    log when it exits or does not serve within ``START_WAIT``)."""

    def __init__(self, name: str, store: Sequence[str], log: Path) -> None:
        self.name = name
        port = daemons.free_port()
        self.url = f"http://{daemons.LOOPBACK}:{port}"
        self.base = self.url + BASE_PATH
        self.log = log
        listen = f"{daemons.LOOPBACK}:{port}"
        argv = daemons.hnv_argv("controller", "--listen", listen, "--replica-id", name, *store)
        if "--auth" not in store and "--tokens" not in store:
            argv += access_args(None)
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                argv,
                env=daemons.python_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_WAIT
        while self.diagnostics() is None:
            if not self.alive or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"controller {name} did not serve: {self.output()[-500:]}")
            time.sleep(0.1)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def diagnostics(self) -> dict[str, Any] | None:
        """The replica's networkControllerState properties, or None if it does not answer."""
        try:
            answer = httpx.get(self.url + DIAGNOSTICS, timeout=5.0)
        except httpx.HTTPError:
            return None
        if answer.status_code != httpx.codes.OK:
            return None
        found: dict[str, Any] = answer.json()["properties"]
        return found

    def put(self, resource: Resource) -> dict[str, Any]:
        """PUT one document of the lab's builder; the replica's answer (AssertionError
        naming the status otherwise)."""
        answer = httpx.put(self.base + resource.path, json=resource.body, timeout=REQUEST_TIMEOUT)
        if answer.status_code not in (httpx.codes.OK, httpx.codes.CREATED):
            raise AssertionError(f"PUT {resource.path}: {answer.status_code} {answer.text[:300]}")
        doc: dict[str, Any] = answer.json()
        return doc

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the replica by its PID and reap it (SIGKILL: a crash)."""
        stop_process(self.process, sig)


def leader_of(replicas: Sequence[ReplicaProcess]) -> ReplicaProcess | None:
    """The live replica that says it publishes, if one does."""
    for replica in replicas:
        if replica.alive:
            found = replica.diagnostics()
            if found is not None and found["publishing"]:
                return replica
    return None


class Replicas:
    """``count`` controller replicas on one etcd cluster, logs in ``directory``."""

    def __init__(self, cluster: EtcdCluster, count: int, directory: Path, *extra: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.replicas: list[ReplicaProcess] = []
        try:
            for i in range(count):
                name = f"c{i + 1}"
                store = ["--store", cluster.url, *extra]
                self.replicas.append(ReplicaProcess(name, store, directory / f"{name}.log"))
        except BaseException:
            self.stop()
            raise

    def live(self) -> list[ReplicaProcess]:
        return [r for r in self.replicas if r.alive]

    def leader(self) -> ReplicaProcess | None:
        return leader_of(self.replicas)

    def wait_leader(self, what: str, timeout: float = START_WAIT) -> ReplicaProcess:
        """The replica that publishes, once one does; AssertionError naming ``what``."""
        found = eventually(self.leader, what, timeout=timeout)
        if found is None:  # eventually returns only a truthy value
            raise AssertionError(f"not within {timeout} s: {what}")
        return found

    def stop(self) -> None:
        for replica in self.replicas:
            replica.kill(signal.SIGTERM)
