"""Supervision of one private ``ovsdb-server`` serving ``ms_vtep`` and ``ms_firewall``.

Every path is private to the state directory: the database files, ``--pidfile``,
``--unixctl``, ``--log-file`` and the always-present ``punix:<state_dir>/db.sock``
remote. The server is stopped by the PID in its pidfile, never by name; a killed server
may linger as a zombie under a PID 1 that does not reap, so liveness is judged from our
own child handle, the pidfile and ``/proc`` state, not from ``ps``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.schema import DATABASES, schema_path

log = logging.getLogger(__name__)

DEBIAN_PACKAGE = "openvswitch-common"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
POLL_INTERVAL = 0.05


@dataclass(frozen=True, slots=True)
class SslFiles:
    """PEM files of one OVSDB SSL endpoint (see ``openhnv.ovsdb.pki``)."""

    private_key: Path
    certificate: Path
    ca_cert: Path


def find_binary(name: str) -> str:
    """The path of an Open vSwitch tool, or an error naming the Debian package."""
    path = shutil.which(name)
    if path is None:
        raise OvsdbError(
            f"{name} not found on PATH: install the Debian package {DEBIAN_PACKAGE} "
            f"(apt-get install --no-install-recommends {DEBIAN_PACKAGE})"
        )
    return path


def listen_remote(listen: str) -> str:
    """The ``ovsdb-server`` remote for a client-style address a host listens on.

    ``tcp:IP:PORT`` -> ``ptcp:PORT:IP``, ``ssl:IP:PORT`` -> ``pssl:PORT:IP``,
    ``unix:PATH`` -> ``punix:PATH`` (``hnv host --listen`` takes the client form).
    """
    kind, _, rest = listen.partition(":")
    if kind == "unix" and rest:
        return f"punix:{rest}"
    if kind in ("tcp", "ssl"):
        ip, _, port = rest.rpartition(":")
        if ip and port.isdigit() and 0 < int(port) < 65536:
            return f"p{kind}:{port}:{ip}"
    raise OvsdbError(
        f"bad listen address {listen!r}: expected unix:PATH, tcp:IP:PORT or ssl:IP:PORT"
    )


def _run_tool(args: Sequence[str]) -> str:
    tool = find_binary("ovsdb-tool")
    done = subprocess.run([tool, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip()
        raise OvsdbError(f"ovsdb-tool {' '.join(args)} failed: {reason}")
    return done.stdout.strip()


def prepare_database(db_file: Path, schema: Path) -> str:
    """Create ``db_file`` from ``schema``, or convert it in place when the schema changed.

    Conversion keeps the data (a copy of the old file is left as ``<db_file>.bak``).
    Returns what was done: ``"created"``, ``"converted"`` or ``"current"``.
    """
    if not db_file.exists():
        _run_tool(["create", str(db_file), str(schema)])
        return "created"
    if _run_tool(["needs-conversion", str(db_file), str(schema)]) != "yes":
        return "current"
    shutil.copy2(db_file, db_file.with_name(db_file.name + ".bak"))
    _run_tool(["convert", str(db_file), str(schema)])
    return "converted"


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` is a live process (a zombie counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class OvsdbServer:
    """One ``ovsdb-server`` process over the databases in ``state_dir``.

    ``remotes`` adds listeners to the always-present unix socket: ``ptcp:PORT:IP`` or
    ``pssl:PORT:IP`` (the latter needs ``ssl``). ``start()`` creates or converts the
    databases first; ``stop()`` ends the process by the PID in its pidfile.
    """

    def __init__(
        self,
        state_dir: Path | str,
        remotes: Sequence[str] = (),
        *,
        ssl: SslFiles | None = None,
        databases: Sequence[str] = DATABASES,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.databases = tuple(databases)
        for remote in remotes:
            kind = remote.split(":", 1)[0]
            if kind not in ("ptcp", "pssl", "punix"):
                raise OvsdbError(
                    f"bad ovsdb-server remote {remote!r}: expected ptcp:PORT:IP, "
                    "pssl:PORT:IP or punix:PATH"
                )
            if kind == "pssl" and ssl is None:
                raise OvsdbError(f"remote {remote!r} needs SSL key, certificate and CA files")
        self.remotes = tuple(remotes)
        self.ssl = ssl
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    # -- paths -------------------------------------------------------------------------
    @property
    def socket_path(self) -> Path:
        return self.state_dir / "db.sock"

    @property
    def unix_remote(self) -> str:
        """The client remote of the local socket, e.g. ``unix:/var/lib/hnv/db.sock``."""
        return f"unix:{self.socket_path}"

    @property
    def pidfile(self) -> Path:
        return self.state_dir / "ovsdb-server.pid"

    @property
    def unixctl_path(self) -> Path:
        return self.state_dir / "ovsdb-server.ctl"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "ovsdb-server.log"

    def db_path(self, database: str) -> Path:
        return self.state_dir / f"{database}.db"

    # -- state -------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The PID in the pidfile, if the file exists and holds a number."""
        try:
            return int(self.pidfile.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return None

    @property
    def running(self) -> bool:
        """True while the server process lives (our child, or the pidfile's PID)."""
        with self._lock:
            if self._proc is not None:
                if self._proc.poll() is None:
                    return True
                self._proc = None
                return False
        pid = self.pid
        return pid is not None and _pid_alive(pid)

    def _socket_answers(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(str(self.socket_path))
            except OSError:
                return False
        return True

    # -- lifecycle ---------------------------------------------------------------------
    def prepare(self) -> dict[str, str]:
        """Create or convert every database file; returns what was done to each."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        return {db: prepare_database(self.db_path(db), schema_path(db)) for db in self.databases}

    def command(self) -> list[str]:
        """The ``ovsdb-server`` command line."""
        cmd = [find_binary("ovsdb-server")]
        cmd += [str(self.db_path(db)) for db in self.databases]
        cmd += [
            f"--pidfile={self.pidfile}",
            f"--unixctl={self.unixctl_path}",
            f"--log-file={self.log_path}",
            f"--remote=punix:{self.socket_path}",
            "-vconsole:off",
            "-vsyslog:off",
            "-vfile:info",
        ]
        cmd += [f"--remote={remote}" for remote in self.remotes]
        if self.ssl is not None:
            cmd += [
                f"--private-key={self.ssl.private_key}",
                f"--certificate={self.ssl.certificate}",
                f"--ca-cert={self.ssl.ca_cert}",
            ]
        return cmd

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Prepare the databases and start the server; returns once its socket answers.

        A server already running on this state directory (a live pidfile PID whose
        socket answers) is adopted rather than started twice.
        """
        if self.running and self._socket_answers():
            return
        self._remove_stale_files()
        self.prepare()
        out = (self.state_dir / "ovsdb-server.out").open("ab")
        try:
            proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=out, stderr=out, close_fds=True
            )
        finally:
            out.close()
        with self._lock:
            self._proc = proc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise OvsdbError(
                    f"ovsdb-server exited with status {proc.returncode} at start: "
                    f"{self._diagnostics()}"
                )
            if self.pid == proc.pid and self._socket_answers():
                log.info("ovsdb-server pid %d serving %s", proc.pid, self.unix_remote)
                return
            time.sleep(POLL_INTERVAL)
        self.stop()
        raise OvsdbError(f"ovsdb-server did not answer on {self.socket_path} within {timeout} s")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """End the server by its PID: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        with self._lock:
            proc, self._proc = self._proc, None
        pid = proc.pid if proc is not None else self.pid
        if pid is not None and (proc is not None or _pid_alive(pid)):
            self._signal_and_wait(pid, proc, timeout)
        self._remove_stale_files()

    def _signal_and_wait(
        self, pid: int, proc: subprocess.Popen[bytes] | None, timeout: float
    ) -> None:
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if proc is not None:
                try:
                    proc.wait(wait)
                    return
                except subprocess.TimeoutExpired:
                    continue
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not _pid_alive(pid):
                    return
                time.sleep(POLL_INTERVAL)
        raise OvsdbError(f"ovsdb-server pid {pid} did not exit after SIGKILL")

    def _remove_stale_files(self) -> None:
        """Remove the pidfile and socket when no live process owns them."""
        pid = self.pid
        if pid is not None and _pid_alive(pid):
            return
        for path in (self.pidfile, self.socket_path, self.unixctl_path):
            path.unlink(missing_ok=True)

    def _diagnostics(self) -> str:
        lines: list[str] = []
        for path in (self.state_dir / "ovsdb-server.out", self.log_path):
            if path.exists():
                lines += path.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
        return " | ".join(line.strip() for line in lines if line.strip()) or "no output"

    def __enter__(self) -> OvsdbServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Supervisor:
    """Restarts an ``OvsdbServer`` whenever it dies; the database files are kept.

    Runs in its own daemon thread; ``restarts`` counts the restarts done, and
    ``on_restart`` (if given) is called after each one from that thread.
    """

    def __init__(
        self,
        server: OvsdbServer,
        *,
        interval: float = 0.2,
        max_backoff: float = 5.0,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        self.server = server
        self.interval = interval
        self.max_backoff = max_backoff
        self.on_restart = on_restart
        self.restarts = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ovsdb-supervisor", daemon=True)

    def start(self) -> None:
        """Start the server if needed, then watch it."""
        if not self.server.running:
            self.server.start()
        self._thread.start()

    def stop(self, *, stop_server: bool = True) -> None:
        """Stop watching (and, by default, stop the server)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if stop_server:
            self.server.stop()

    def _run(self) -> None:
        backoff = self.interval
        while not self._stop.wait(self.interval):
            if self.server.running:
                backoff = self.interval
                continue
            log.warning("ovsdb-server in %s died; restarting", self.server.state_dir)
            try:
                self.server.start()
            except OvsdbError as err:
                self.last_error = str(err)
                log.error("restarting ovsdb-server failed: %s", err)
                backoff = min(backoff * 2, self.max_backoff)
                self._stop.wait(backoff)
                continue
            self.restarts += 1
            self.last_error = None
            if self.on_restart is not None:
                self.on_restart()

    def __enter__(self) -> Supervisor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
