"""The lab's daemons: the controller (or a cluster of them) and one ``hnv host`` per host.

One controller runs in the root namespace on ``127.0.0.1:<free port>`` with its store in
``<run_dir>/controller.db``. With ``--controllers N`` (N > 1) the lab runs a three-member
etcd cluster on loopback (``etcd-1..3``, data in ``<run_dir>/etcd-N/``) and N replicas
``controller-1..N`` on it (``hnv controller --store etcd://...``, docs/cluster.md). Each
host runs inside its host namespace (``ip netns exec``) with its state in
``<run_dir>/hosts/<host>/``. Every daemon gets a pidfile and a log,
``<run_dir>/<name>.pid`` and ``.log``; ``hnv lab down``/``clean`` stop them by that pid
(``builder.stop_pidfile``). The controllers' URLs are kept in ``<run_dir>/controller.url``,
one per line. The controllers serve HTTPS and require a client certificate or a token:
the lab's API PKI (``lab.access``) is ``<run_dir>/api-pki/``, made when the first
controller starts; every replica enforces the same.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import openhnv
from openhnv.lab import builder, netns
from openhnv.lab.access import ApiAccess
from openhnv.lab.errors import LabError
from openhnv.lab.etcd import EtcdCluster
from openhnv.lab.resources import OVSDB_SOCKET, host_state_dir
from openhnv.lab.rest import ControllerClient

CONTROLLER = "controller"
ETCD_MEMBERS = 3  # the smallest etcd cluster that survives the loss of a member
CONTROLLER_URL_FILE = "controller.url"
CONTROLLER_DB = "controller.db"
API_PKI_DIR = "api-pki"
LOOPBACK = "127.0.0.1"
READY_LINE = "ready"
CONTROLLER_READY_SECONDS = 30.0
HOST_READY_SECONDS = 30.0
_POLL = 0.05


def host_daemon(host: str) -> str:
    """The daemon name (pidfile and log stem) of a host."""
    return f"host-{host}"


def pidfile(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}{builder.PIDFILE_SUFFIX}"


def logfile(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.log"


def python_env() -> dict[str, str]:
    """The environment for daemons: this openhnv's sources first on PYTHONPATH."""
    env = dict(os.environ)
    source = str(Path(openhnv.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def hnv_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "openhnv", *args]


def free_port() -> int:
    """A TCP port on loopback that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def _last_line(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "no output"


def spawn(run_dir: Path, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
    """Start a daemon in its own session, log to ``<name>.log``, record ``<name>.pid``."""
    log = logfile(run_dir, name)
    with open(log, "ab") as out:
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=python_env(),
                start_new_session=True,
            )
        except OSError as exc:
            raise LabError(f"{name}: cannot start {argv[0]}: {exc}") from exc
    pidfile(run_dir, name).write_text(f"{process.pid}\n")
    return process


def wait_ready(
    process: subprocess.Popen[bytes],
    name: str,
    log: Path,
    ready: Callable[[], bool],
    timeout: float,
) -> None:
    """Return once ``ready()``; LabError naming the daemon's last log line otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        if process.poll() is not None:
            raise LabError(
                f"{name} exited with status {process.returncode}: {_last_line(log)} (log {log})"
            )
        if time.monotonic() >= deadline:
            raise LabError(f"{name} not ready after {timeout:g} s: {_last_line(log)} (log {log})")
        time.sleep(_POLL)


def controller_access(run_dir: Path) -> ApiAccess | None:
    """The lab controllers' credentials, once ``start_controller``/``start_cluster`` made them."""
    return ApiAccess.load(run_dir / API_PKI_DIR)


def _access(run_dir: Path) -> ApiAccess:
    return controller_access(run_dir) or ApiAccess.create(run_dir / API_PKI_DIR)


def _secure_args(access: ApiAccess, run_dir: Path, name: str) -> list[str]:
    return [*access.controller_args(), "--audit-log", str(run_dir / f"{name}-audit.jsonl")]


def start_controller(
    run_dir: Path, timeout: float = CONTROLLER_READY_SECONDS, attempts: int = 3
) -> str:
    """Start ``hnv controller`` on a free loopback port; returns its base URL once serving.

    The port is free when probed; should another process take it before the controller
    binds, the controller exits and is started again on a new port.
    """
    access = _access(run_dir)
    for attempt in range(1, attempts + 1):
        port = free_port()
        listen = f"{LOOPBACK}:{port}"
        argv = hnv_argv("controller", "--listen", listen, "--db", str(run_dir / CONTROLLER_DB))
        process = spawn(run_dir, CONTROLLER, argv + _secure_args(access, run_dir, CONTROLLER))
        url = f"https://{listen}"
        client = ControllerClient.connect(url, timeout=2.0, access=access)
        try:
            wait_ready(process, CONTROLLER, logfile(run_dir, CONTROLLER), client.reachable, timeout)
        except LabError:
            if process.poll() is None or attempt == attempts:
                raise
            continue
        finally:
            client.close()
        (run_dir / CONTROLLER_URL_FILE).write_text(url + "\n")
        return url
    raise LabError(f"{CONTROLLER}: no attempt left")


def controller_url(run_dir: Path) -> str | None:
    """The URL of the lab's (first) controller, if one was started."""
    urls = controller_urls(run_dir)
    return urls[0] if urls else None


def controller_urls(run_dir: Path) -> list[str]:
    """The URLs of the lab's controllers (one, or every replica of a cluster)."""
    try:
        return (run_dir / CONTROLLER_URL_FILE).read_text().split()
    except OSError:
        return []


def start_cluster(
    run_dir: Path, replicas: int, timeout: float = CONTROLLER_READY_SECONDS
) -> list[str]:
    """A three-member etcd cluster and ``replicas`` controllers on it; their URLs.

    Every process is recorded by its pidfile as soon as it starts, so a failure part-way
    leaves nothing that ``down``/``clean`` cannot stop.
    """
    cluster = EtcdCluster(run_dir, ETCD_MEMBERS)  # <run_dir>/etcd-N.pid, as every daemon
    cluster.start()
    access = _access(run_dir)
    urls: list[str] = []
    for index in range(1, replicas + 1):
        name = f"{CONTROLLER}-{index}"
        port = free_port()
        listen = f"{LOOPBACK}:{port}"
        argv = hnv_argv(
            "controller", "--listen", listen, "--store", cluster.url, "--replica-id", name
        )
        process = spawn(run_dir, name, argv + _secure_args(access, run_dir, name))
        client = ControllerClient.connect(f"https://{listen}", timeout=2.0, access=access)
        try:
            wait_ready(process, name, logfile(run_dir, name), client.reachable, timeout)
        finally:
            client.close()
        urls.append(f"https://{listen}")
    (run_dir / CONTROLLER_URL_FILE).write_text("\n".join(urls) + "\n")
    return urls


def printed_ready(log: Path, since: int = 0) -> Callable[[], bool]:
    """True once the log shows a ``ready`` line written after byte ``since``.

    A restarted daemon appends to the log of its earlier life, whose ``ready`` line
    says nothing about the new process.
    """

    def ready() -> bool:
        try:
            with open(log, "rb") as f:
                f.seek(since)
                text = f.read().decode(errors="replace")
        except OSError:
            return False
        return any(line.strip() == READY_LINE for line in text.splitlines())

    return ready


def _log_size(log: Path) -> int:
    try:
        return log.stat().st_size
    except OSError:
        return 0


def start_host(
    run_dir: Path,
    namespace: str,
    host: str,
    timeout: float = HOST_READY_SECONDS,
    extra: Sequence[str] = (),
    *,
    shared_mounts: bool = False,
    fastpath: str = "off",
) -> int:
    """Start ``hnv host --driver linux --fastpath MODE`` (and ``extra`` arguments, such
    as a gateway's ``--role gateway``) inside ``namespace``; returns its pid once ready.

    ``shared_mounts`` (a gateway host, which makes its compartments with ``ip netns
    add``): enter only the network namespace, not ``ip netns exec``'s private mount
    namespace, so that the compartments are seen from outside and after a restart."""
    state_dir = host_state_dir(run_dir, host)
    state_dir.mkdir(parents=True, exist_ok=True)
    name = host_daemon(host)
    argv = ["ip", "netns", "exec", namespace]
    if shared_mounts:
        argv = ["nsenter", f"--net={netns.NETNS_DIR}/{namespace}", "--"]
    argv += hnv_argv("host", "--name", host, "--driver", "linux", "--fastpath", fastpath,
                     "--state-dir", str(state_dir))  # fmt: skip
    argv += list(extra)
    log = logfile(run_dir, name)
    printed = printed_ready(log, since=_log_size(log))
    process = spawn(run_dir, name, argv)
    socket_path = state_dir / OVSDB_SOCKET

    def ready() -> bool:
        return printed() and socket_path.exists()

    wait_ready(process, name, log, ready, timeout)
    return process.pid


def recorded(run_dir: Path) -> dict[str, int]:
    """Daemon name -> pid from the pidfiles of a lab."""
    found: dict[str, int] = {}
    for path in sorted(run_dir.glob(f"*{builder.PIDFILE_SUFFIX}")):
        try:
            found[path.name[: -len(builder.PIDFILE_SUFFIX)]] = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return found
