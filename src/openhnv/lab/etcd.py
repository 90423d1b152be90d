"""Private etcd clusters on loopback, for the lab, the tests and the benchmarks.

``EtcdCluster(directory, size)`` starts ``size`` members of Debian's ``etcd`` (package
``etcd-server``, 3.4) that know only each other: each has its own data directory
(``directory/etcd-N``), client and peer ports on 127.0.0.1, and a pidfile and log beside
it (``directory/etcd-N.pid``, ``.log``, so a lab's ``down`` finds them with its other
daemons). Members are stopped by the pid in their pidfile, never by name; ``kill(i)``
kills one with SIGKILL and ``start_member(i)`` brings it back on the same ports and data.

Settings the controller relies on: transactions of up to ``MAX_TXN_OPS`` operations and
``MAX_REQUEST_BYTES`` bytes (the publisher batches provisioning states), the history
compacted to the last ``COMPACTION_REVISIONS`` revisions.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from openhnv.lab.errors import LabError

DEBIAN_PACKAGE = "etcd-server"
LOOPBACK = "127.0.0.1"
START_SECONDS = 30.0
STOP_SECONDS = 10.0
MAX_TXN_OPS = 1024
MAX_REQUEST_BYTES = 8 * 1024 * 1024
COMPACTION_REVISIONS = 100_000
HEARTBEAT_MS = 150  # a loaded 2-core machine: fewer spurious elections than etcd's 100
ELECTION_MS = 1500
_POLL = 0.05


def etcd_binary() -> str:
    path = shutil.which("etcd")
    if path is None:
        raise LabError(
            f"etcd not found on PATH: install the Debian package {DEBIAN_PACKAGE} "
            f"(apt-get install --no-install-recommends {DEBIAN_PACKAGE})"
        )
    return path


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on loopback that nobody listens on right now."""
    probes: list[socket.socket] = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probe.bind((LOOPBACK, 0))
            probes.append(probe)
        return [int(p.getsockname()[1]) for p in probes]
    finally:
        for probe in probes:
            probe.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


@dataclass(frozen=True, slots=True)
class Member:
    """One etcd member: its name, ports and files."""

    name: str
    directory: Path
    client_port: int
    peer_port: int

    @property
    def client_url(self) -> str:
        return f"http://{LOOPBACK}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{LOOPBACK}:{self.peer_port}"

    @property
    def endpoint(self) -> str:
        return f"{LOOPBACK}:{self.client_port}"

    @property
    def pidfile(self) -> Path:
        """``<cluster dir>/<name>.pid``: beside the member's directory, where a lab finds it."""
        return self.directory.parent / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return self.directory.parent / f"{self.name}.log"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self) -> bool:
        pid = self.pid()
        return pid is not None and _alive(pid)


class EtcdCluster:
    """``size`` etcd members on loopback under ``directory`` (one subdirectory each)."""

    def __init__(self, directory: Path, size: int = 3, prefix: str = "etcd") -> None:
        if size < 1:
            raise LabError(f"an etcd cluster needs at least one member, not {size}")
        self.directory = directory
        # The token puts "openhnv" on the command line: the lab stops only its own pids.
        self.token = f"openhnv-{uuid.uuid4().hex[:12]}"
        ports = free_ports(2 * size)
        self.members = [
            Member(
                f"{prefix}-{i + 1}", directory / f"{prefix}-{i + 1}", ports[2 * i], ports[2 * i + 1]
            )
            for i in range(size)
        ]
        self._processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """The controller's ``--store`` value: ``etcd://HOST:PORT,...``."""
        return "etcd://" + ",".join(m.endpoint for m in self.members)

    def _command(self, member: Member) -> list[str]:
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        return [
            etcd_binary(),
            "--name", member.name,
            "--data-dir", str(member.data_dir),
            "--listen-client-urls", member.client_url,
            "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url,
            "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", initial,
            "--initial-cluster-token", self.token,
            "--initial-cluster-state", "new",
            "--heartbeat-interval", str(HEARTBEAT_MS),
            "--election-timeout", str(ELECTION_MS),
            "--max-txn-ops", str(MAX_TXN_OPS),
            "--max-request-bytes", str(MAX_REQUEST_BYTES),
            "--auto-compaction-mode", "revision",
            "--auto-compaction-retention", str(COMPACTION_REVISIONS),
            "--logger", "zap",
            "--log-outputs", "stderr",
        ]  # fmt: skip

    def start(self, timeout: float = START_SECONDS) -> EtcdCluster:
        """Start every member; return once the cluster answers a quorum read."""
        for index in range(len(self.members)):
            self.start_member(index, wait=False)
        self.wait_ready(timeout)
        return self

    def start_member(self, index: int, wait: bool = True, timeout: float = START_SECONDS) -> None:
        """Start member ``index`` (again: same ports and data); optionally wait for quorum."""
        member = self.members[index]
        member.directory.mkdir(parents=True, exist_ok=True)
        with open(member.log, "ab") as log:
            try:
                process = subprocess.Popen(
                    self._command(member),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            except OSError as exc:
                raise LabError(f"{member.name}: cannot start etcd: {exc}") from exc
        self._processes[index] = process
        member.pidfile.write_text(f"{process.pid}\n")
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = START_SECONDS) -> None:
        """Return once some member answers a linearizable read (there is a quorum)."""
        deadline = time.monotonic() + timeout
        while True:
            for member in self.members:
                if member.running() and _quorum_read(member):
                    return
            for index, process in self._processes.items():
                if process.poll() is not None and process.returncode not in (0, -9, -15):
                    member = self.members[index]
                    raise LabError(f"{member.name} exited: {_last_line(member.log)}")
            if time.monotonic() > deadline:
                raise LabError(
                    f"etcd cluster in {self.directory} has no quorum after {timeout:g} s: "
                    + _last_line(self.members[0].log)
                )
            time.sleep(_POLL)

    def kill(self, index: int, sig: int = signal.SIGKILL) -> None:
        """Signal member ``index`` by its pid and wait until it is gone."""
        member = self.members[index]
        pid = member.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + STOP_SECONDS
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(_POLL)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process = self._processes.pop(index, None)
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_SECONDS)
        member.pidfile.unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop every member (TERM, then KILL) by pid."""
        for index in range(len(self.members)):
            self.kill(index, signal.SIGTERM)

    def __enter__(self) -> EtcdCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _quorum_read(member: Member) -> bool:
    """A linearizable range on the member answers (it has a leader and a quorum)."""
    try:
        answer = httpx.post(f"{member.client_url}/v3/kv/range", json={"key": "AA=="}, timeout=2.0)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200 and "header" in answer.json()


def _last_line(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1][-300:] if lines else "no output"
