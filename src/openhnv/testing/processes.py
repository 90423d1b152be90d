"""``hnv controller`` and ``hnv host`` as child processes of a test or a benchmark.

Each runs this checkout's openhnv (``lab.daemons.python_env``), writes its diagnostics to
a log file beside its state rather than into a pipe nobody reads (a daemon that logs a
lot would block on a full pipe), and is stopped by its PID: SIGTERM, then SIGKILL when
it does not go in time. ``HostProcess`` also removes the ``ovsdb-server`` a killed host
leaves behind, by the PID in that server's pidfile.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from openhnv.lab import builder, daemons
from openhnv.lab.access import ApiAccess
from openhnv.lab.documents import Resource
from openhnv.lab.resources import OVSDB_SOCKET
from openhnv.lab.rest import BASE_PATH, ControllerClient, http_client
from openhnv.ovsdb.server import OvsdbServer
from openhnv.testing.polling import WAIT

READY = "ready"  # what ``hnv host`` prints on stdout once it serves
STOP_TIMEOUT = 30.0
REQUEST_TIMEOUT = 10.0
_CLOCK_FIELDS = (11, 12)  # utime, stime in /proc/PID/stat after the command name


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    user, system = (int(fields[i]) / tick for i in _CLOCK_FIELDS)
    return user, system


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` so far."""
    return sum(cpu_times(pid))


def stop_process(
    process: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT
) -> int:
    """Send ``sig`` to ``process`` by its PID and reap it (SIGKILL after ``timeout``)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, sig)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
    return process.wait(timeout)


def _read_text(log: Path) -> str:
    try:
        return log.read_text(errors="replace")
    except OSError:
        return ""


class HostProcess:
    """``hnv host --name NAME --state-dir DIR --driver DRIVER EXTRA...``, optionally
    inside a network namespace; waits up to ``timeout`` for its ``ready`` line.

    ``ready`` says whether it came (``first_line`` is what came instead, ``stderr()``
    why); ``ready_seconds`` is the time from the spawn to that line.
    """

    def __init__(
        self,
        state_dir: Path,
        *extra: str,
        name: str = "host1",
        driver: str = "none",
        namespace: str | None = None,
        timeout: float = WAIT,
    ) -> None:
        self.state_dir = state_dir
        self.name = name
        argv = daemons.hnv_argv(
            "host", "--name", name, "--state-dir", str(state_dir), "--driver", driver, *extra
        )
        if namespace is not None:
            argv = ["ip", "netns", "exec", namespace, *argv]
        self.log = state_dir.with_name(f"{state_dir.name}.log")
        began = time.perf_counter()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                argv,
                env=daemons.python_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.first_line = self._first_line(timeout)
        self.ready_seconds = time.perf_counter() - began

    def _first_line(self, timeout: float) -> str:
        got: list[str] = []
        stdout = self.process.stdout
        if stdout is None:
            return ""
        reader = threading.Thread(target=lambda: got.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        return got[0].strip() if got else ""

    @property
    def ready(self) -> bool:
        return self.first_line == READY

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def remote(self) -> str:
        """The unix socket of the host's ovsdb-server (what a controller dials)."""
        return f"unix:{self.state_dir / OVSDB_SOCKET}"

    def stderr(self) -> str:
        """What the host wrote on stderr so far (its log, ``<state_dir>.log``)."""
        return _read_text(self.log)

    def require_ready(self) -> HostProcess:
        """This host, or RuntimeError with its diagnostics when it did not start."""
        if not self.ready:
            self.close()
            raise RuntimeError(
                f"hnv host {self.name} did not start: {self.first_line!r} {self.stderr()}"
            )
        return self

    def ovsdb_pid(self) -> int | None:
        """The PID in the host's ovsdb-server pidfile, if there is one."""
        try:
            return int(OvsdbServer(self.state_dir).pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Signal the host, wait for it; its exit status."""
        return stop_process(self.process, sig, timeout)

    def close(self) -> None:
        """Stop the host and whatever ovsdb-server it left behind."""
        self.stop()
        if self.process.stdout is not None:
            self.process.stdout.close()
        pid = self.ovsdb_pid()
        if pid is not None and builder.alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> HostProcess:
        return self.require_ready()

    def __exit__(self, *exc: object) -> None:
        self.close()


def access_args(access: ApiAccess | None) -> list[str]:
    """``hnv controller`` options for ``access``: its TLS and credentials, or, without,
    ``--auth none`` (allowed on the loopback listeners of tests)."""
    return ["--auth", "none"] if access is None else access.controller_args()


class ControllerProcess:
    """``hnv controller`` on a free loopback port with its store in ``db``; returns once
    it serves (RuntimeError naming its output when it exits or does not serve). With
    ``access`` it serves HTTPS and wants credentials (the clients here present the
    admin certificate); without, plain HTTP with ``--auth none``."""

    def __init__(
        self,
        db: Path,
        *extra: str,
        timeout: float = WAIT,
        attempts: int = 3,
        access: ApiAccess | None = None,
    ) -> None:
        self.db = db
        self.log = db.with_name(f"{db.name}.log")
        self.access = access
        scheme = "http" if access is None else "https"
        for attempt in range(1, attempts + 1):
            self.port = daemons.free_port()
            self.url = f"{scheme}://{daemons.LOOPBACK}:{self.port}"
            self.base = self.url + BASE_PATH
            listen = f"{daemons.LOOPBACK}:{self.port}"
            argv = daemons.hnv_argv("controller", "--listen", listen, "--db", str(db))
            with open(self.log, "ab") as log:
                self.process = subprocess.Popen(
                    [*argv, *access_args(access), *extra],
                    env=daemons.python_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                )
            if self._serving(timeout):
                return
            if self.process.poll() is None or attempt == attempts:
                break  # alive but not serving, or out of attempts: give up
            # it exited: perhaps another process took the free port first; a new port
        self.stop()
        raise RuntimeError(f"hnv controller did not serve: {self.output()}")

    def _serving(self, timeout: float) -> bool:
        client = ControllerClient.connect(self.url, timeout=1.0, access=self.access)
        try:
            deadline = time.monotonic() + timeout
            while self.process.poll() is None and time.monotonic() < deadline:
                if client.reachable():
                    return True
                time.sleep(0.05)
            return False
        finally:
            client.close()

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        """What the controller wrote so far (its log, ``<db>.log``)."""
        return _read_text(self.log)

    def client(self) -> ControllerClient:
        """A REST client of this controller (the lab's); close it after use."""
        return ControllerClient.connect(self.url, timeout=REQUEST_TIMEOUT, access=self.access)

    def http(self) -> httpx.Client:
        """An ``httpx.Client`` of this controller's URL with its credentials; close it."""
        return http_client(self.url, REQUEST_TIMEOUT, self.access)

    def put(self, resource: Resource) -> dict[str, Any]:
        """PUT one document of the lab's builder; the controller's answer."""
        with self.http() as http:
            response = http.put(self.base + resource.path, json=resource.body)
        if response.status_code not in (200, 201):
            raise AssertionError(f"PUT {resource.path}: {response.status_code} {response.text}")
        doc: dict[str, Any] = response.json()
        return doc

    def get(self, ref: str) -> dict[str, Any]:
        with self.http() as http:
            doc: dict[str, Any] = http.get(self.base + ref).json()
        return doc

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the controller, wait for it; its exit status."""
        return stop_process(self.process, sig)

    def kill(self) -> int:
        """SIGKILL: the controller goes without a chance to tidy up (a crash)."""
        return self.stop(signal.SIGKILL)

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> ControllerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_hosts(
    root: Path, names: Sequence[str], *extra: str, driver: str = "none"
) -> list[HostProcess]:
    """``hnv host`` for each name in ``root/<name>``, all ready (or none left running)."""
    started: list[HostProcess] = []
    try:
        for name in names:
            started.append(HostProcess(root / name, *extra, name=name, driver=driver))
            started[-1].require_ready()
    except BaseException:
        for host in started:
            host.close()
        raise
    return started
