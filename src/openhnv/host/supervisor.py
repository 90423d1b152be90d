"""One Hyper-V host as a process: its ovsdb-server, vSwitch, host agent and control socket.

``HostProcess(config).start()`` brings the parts up in order and ``stop()`` takes them
down in reverse; ``hnv host`` (``openhnv.host.main``) wraps it with signals. All
state lives in the state directory (docs/host-process.md)::

    host.pid          our PID, flock()ed while we run (a second host there is refused)
    host.log          this process's log
    ms_vtep.db, ms_firewall.db, ovsdb-server.{pid,ctl,log,out}, db.sock
    ovsdb.sock        the ovsdb-server socket the agent (and a lab controller) uses
    control.sock      the inspection socket (``openhnv.host.control``)

The ovsdb-server is supervised: when it dies it is restarted over the same database
files, and the agent's client reconnects and resyncs by itself.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import importlib
import ipaddress
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from openhnv.agent.agent import HostAgent
from openhnv.gateway.errors import GatewayError
from openhnv.gateway.manager import CompartmentManager
from openhnv.host.control import ControlServer, socket_path
from openhnv.host.errors import HostError
from openhnv.host.queries import host_handlers
from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.pki import ca_cert_path, issue, ssl_files
from openhnv.ovsdb.server import OvsdbServer, SslFiles, Supervisor, find_binary, listen_remote
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.limits import DEFAULT_LIMITS, PortLimits
from openhnv.vswitch.driver import Driver
from openhnv.vswitch.errors import VSwitchError
from openhnv.vswitch.null import NullDriver
from openhnv.vswitch.switch import HostSwitch

log = logging.getLogger(__name__)

DRIVERS = ("none", "linux")
HOST_ROLE, GATEWAY_ROLE = "host", "gateway"
ROLES = (HOST_ROLE, GATEWAY_ROLE)
FASTPATH_MODES = ("auto", "on", "off")
LINUX_DRIVER_MODULE = "openhnv.vswitch.linux"
OVSDB_SOCKET = "ovsdb.sock"
PID_FILE = "host.pid"
LOG_FILE = "host.log"
AGENT_START_TIMEOUT = 30.0
MAX_UNIX_PATH = 107  # sun_path holds 108 bytes, NUL included
LISTEN_KINDS = ("unix", "tcp", "ssl")
ANY_ADDRESS = "0.0.0.0"
PORT_MAX = 65535
IPV6 = 6


@dataclass(frozen=True, slots=True)
class HostConfig:
    """What ``hnv host`` was asked to run."""

    name: str
    state_dir: Path
    listen: tuple[str, ...] = ()
    pki: Path | None = None
    driver: str = "none"
    fastpath: str = "auto"  # the kernel fast path under the linux driver: auto, on, off
    uplink_mbps: int | None = None  # the uplinks' capacity for reservations (vswitch.htb)
    xdp_meter: bool = False  # the ports' abuse meters in XDP instead of socket filters
    null_ports: tuple[tuple[str, str], ...] = ()  # (port, mac) the none driver reports
    agent_timeout: float = AGENT_START_TIMEOUT
    role: str = HOST_ROLE  # "gateway": also build the tenants' compartments
    compartment_prefix: str | None = None  # namespaces of compartments (default hnv-cmp-<name>-)
    limits: PortLimits = DEFAULT_LIMITS  # every VM port's abuse limits (vfp.limits)

    @property
    def compartments(self) -> str:
        return self.compartment_prefix or f"hnv-cmp-{self.name}-"

    @property
    def ovsdb_socket(self) -> Path:
        return self.state_dir / OVSDB_SOCKET


def make_driver(config: HostConfig) -> Driver:
    """The vSwitch driver ``config.driver``: ``none`` (no I/O; reports ``null_ports``) or
    ``linux`` (imported on demand)."""
    kind = config.driver
    if config.null_ports and kind != "none":
        raise HostError("--null-port is for --driver none only")
    if config.fastpath not in FASTPATH_MODES:
        raise HostError(f"--fastpath {config.fastpath!r}: expected one of {FASTPATH_MODES}")
    if kind == "none" and config.fastpath == "on":
        raise HostError("--fastpath on needs --driver linux (the none driver moves no frames)")
    if kind == "none" and config.xdp_meter:
        raise HostError("--xdp-meter needs --driver linux (the none driver has no port devices)")
    if kind == "none":
        null = NullDriver()
        for port, mac in config.null_ports:
            null.inject_port(port, mac)
        return null
    if kind == "linux":
        try:
            module = importlib.import_module(LINUX_DRIVER_MODULE)
        except ImportError as err:
            raise HostError(f"driver linux is not available: {err}") from None
        try:
            driver: Driver = module.LinuxDriver(
                fastpath=config.fastpath,
                uplink_mbps=config.uplink_mbps,
                xdp_meter=config.xdp_meter,
            )
        except (VSwitchError, OSError) as err:
            raise HostError(f"driver linux did not start: {err}") from None
        return driver
    raise HostError(f"unknown driver {kind!r}: expected one of {', '.join(DRIVERS)}")


def _check_unix_path(path: Path, what: str) -> None:
    if len(os.fsencode(path)) > MAX_UNIX_PATH:
        raise HostError(
            f"{what} {path} is longer than {MAX_UNIX_PATH} bytes: use a shorter --state-dir"
        )


def expand_listen(text: str) -> str:
    """A ``--listen`` value as an OVSDB remote: ``[ADDR:]PORT`` is SSL at ADDR (every
    address when left out), the way a Network Controller reaches a host agent; ``unix:``,
    ``tcp:`` and ``ssl:`` remotes are kept as written. HostError when malformed."""
    if text.partition(":")[0] in LISTEN_KINDS:
        return text
    address, sep, port = text.rpartition(":")
    if not sep:
        address = ANY_ADDRESS
    if not port.isdigit() or not 0 < int(port) <= PORT_MAX:
        raise HostError(f"--listen {text!r}: port {port!r} is not 1..{PORT_MAX}")
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        raise HostError(f"--listen {text!r}: {address!r} is not an IP address") from None
    shown = f"[{ip}]" if ip.version == IPV6 else str(ip)
    return f"ssl:{shown}:{int(port)}"


def ovsdb_remotes(config: HostConfig) -> list[str]:
    """The ovsdb-server listeners: ``ovsdb.sock`` always, then each ``--listen``."""
    remotes = [f"punix:{config.ovsdb_socket}"]
    for listen in config.listen:
        try:
            remote = listen_remote(listen)
        except OvsdbError as err:
            raise HostError(f"--listen: {err}") from None
        if remote not in remotes:
            remotes.append(remote)
    return remotes


def check_listen_ports(listen: Sequence[str]) -> None:
    """Refuse a ``tcp:``/``ssl:`` listener whose address cannot be bound now.

    ovsdb-server only logs a failed listen and keeps retrying, so a busy port would go
    unnoticed until the controller fails to connect.
    """
    for address in listen:
        kind, _, rest = address.partition(":")
        if kind not in ("tcp", "ssl"):
            continue
        ip, _, port = rest.rpartition(":")
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((ip.strip("[]"), int(port)))
            except OSError as err:
                raise HostError(f"--listen {address}: {err.strerror or err}") from None


def host_ssl(config: HostConfig) -> SslFiles | None:
    """The host's SSL files when a listener is ``ssl:``; the host trusts the controller CA only.

    A missing host certificate is issued from the host CA in ``--pki`` when it is there.
    """
    if not any(x.startswith("ssl:") for x in config.listen):
        return None
    if config.pki is None:
        raise HostError("--listen ssl:... needs --pki DIR (the directory `hnv pki init` made)")
    files = ssl_files(config.pki, config.name, "host")
    if not ca_cert_path(config.pki, "controller").is_file():
        raise HostError(
            f"no controller CA certificate in {config.pki}: run `hnv pki init --dir {config.pki}`"
        )
    if not (files.private_key.is_file() and files.certificate.is_file()):
        try:
            files = issue(config.pki, config.name, "host")
        except OvsdbError as err:
            raise HostError(
                f"no certificate for host {config.name} and cannot issue one: {err}"
            ) from None
        log.info("issued host certificate %s", files.certificate)
    return files


@dataclass
class _Parts:
    server: OvsdbServer | None = None
    supervisor: Supervisor | None = None
    switch: HostSwitch | None = None
    agent: HostAgent | None = None
    gateway: CompartmentManager | None = None
    control: ControlServer | None = None


class HostProcess:
    """The parts of one host, started in order and stopped in reverse."""

    def __init__(
        self, config: HostConfig, *, driver_factory: Callable[[HostConfig], Driver] = make_driver
    ) -> None:
        if config.driver not in DRIVERS:
            known = ", ".join(DRIVERS)
            raise HostError(f"unknown driver {config.driver!r}: expected one of {known}")
        if config.role not in ROLES:
            raise HostError(f"unknown role {config.role!r}: expected one of {', '.join(ROLES)}")
        self.config = config
        self.state_dir = config.state_dir.resolve()
        self._driver_factory = driver_factory
        self._parts = _Parts()
        self._pid_file: IO[str] | None = None
        self.started_at: float | None = None
        self.startup: dict[str, float] = {}  # seconds each start step took

    # -- start -----------------------------------------------------------------------

    def _claim_state_dir(self) -> None:
        """Create the state directory and hold ``host.pid`` locked for our lifetime."""
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            f = open(self.state_dir / PID_FILE, "a+", encoding="ascii")  # noqa: SIM115
        except OSError as err:
            reason = err.strerror or err
            raise HostError(f"cannot use state dir {self.state_dir}: {reason}") from None
        if not os.access(self.state_dir, os.W_OK):
            f.close()
            raise HostError(f"cannot use state dir {self.state_dir}: not writable")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            f.seek(0)
            other = f.read().strip() or "?"
            f.close()
            if err.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise HostError(
                    f"a host is already running in {self.state_dir} (pid {other})"
                ) from None
            raise HostError(f"cannot lock {self.state_dir / PID_FILE}: {err}") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._pid_file = f

    def start(self) -> None:
        """Start every part; on failure, stop what was started and raise ``HostError``."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        cfg, parts = self.config, self._parts
        began = time.monotonic()
        self._claim_state_dir()
        for path, what in ((cfg.state_dir / OVSDB_SOCKET, "ovsdb socket"),
                           (socket_path(self.state_dir), "control socket")):  # fmt: skip
            _check_unix_path(path.resolve(), what)
        try:
            for tool in ("ovsdb-server", "ovsdb-tool"):
                find_binary(tool)
            server = OvsdbServer(self.state_dir, ovsdb_remotes(cfg), ssl=host_ssl(cfg))
        except OvsdbError as err:
            raise HostError(str(err)) from None
        if not server.running:  # an orphaned server of ours (killed host) is adopted as is
            check_listen_ports(cfg.listen)
        driver = self._driver_factory(cfg)  # before any daemon: a driver error costs nothing
        parts.server = server
        parts.supervisor = Supervisor(server, on_restart=self._ovsdb_restarted)
        try:
            parts.supervisor.start()
        except OvsdbError as err:
            raise HostError(f"ovsdb-server did not start: {err}") from None
        log.info("ovsdb-server pid %s on %s", server.pid, ", ".join(server.remotes))
        self.startup["ovsdb_server_s"] = round(time.monotonic() - began, 4)

        parts.switch = HostSwitch(VfpEngine(limits=cfg.limits), driver)
        parts.agent = HostAgent(parts.switch, self.remote, host_name=cfg.name)
        synced = time.monotonic()
        try:
            parts.agent.start(timeout=cfg.agent_timeout)
        except OvsdbError as err:
            raise HostError(f"host agent did not sync with {self.remote}: {err}") from None
        self.startup["agent_sync_s"] = round(time.monotonic() - synced, 4)
        try:
            parts.switch.start()
        except (VSwitchError, OSError) as err:
            raise HostError(f"driver {cfg.driver} did not open: {err}") from None
        log.info("agent synced; switch started with driver %s", cfg.driver)
        if cfg.role == GATEWAY_ROLE:
            parts.gateway = CompartmentManager(self.remote, self.state_dir, cfg.compartments)
            try:
                parts.gateway.start(timeout=cfg.agent_timeout)
            except (OvsdbError, GatewayError) as err:
                raise HostError(f"gateway compartments did not start: {err}") from None
            log.info("gateway role: compartments in namespaces %s*", cfg.compartments)
        adopted = parts.switch.revalidate_adopted()  # what a killed predecessor left
        for what, count in adopted.items():  # adopted, kept, rewritten, deleted
            self.startup[f"fastpath_{what}"] = count

        gateway = parts.gateway
        handlers = host_handlers(
            parts.switch,
            parts.agent,
            process_status=self.status,
            gateway_status=gateway.status if gateway is not None else None,
        )
        parts.control = ControlServer(socket_path(self.state_dir), handlers)
        try:
            parts.control.start()
        except Exception as err:
            raise HostError(str(err)) from None
        self.started_at = time.time()
        self.startup["total_s"] = round(time.monotonic() - began, 4)

    @property
    def remote(self) -> str:
        return f"unix:{self.state_dir / OVSDB_SOCKET}"

    def _ovsdb_restarted(self) -> None:
        server = self._parts.server
        log.warning("ovsdb-server restarted (pid %s); the agent resyncs", server and server.pid)

    # -- state -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The process side of ``hnv host status``."""
        parts = self._parts
        server, sup = parts.server, parts.supervisor
        return {
            "name": self.config.name,
            "pid": os.getpid(),
            "state_dir": str(self.state_dir),
            "driver": self.config.driver,
            "role": self.config.role,
            "fastpath": parts.switch.fastpath_status() if parts.switch else {"state": "off"},
            "qos": parts.switch.qos_status() if parts.switch else {},
            "uptime_s": round(time.time() - self.started_at, 1) if self.started_at else 0.0,
            "ovsdb_remote": self.remote,
            "listen": list(self.config.listen),
            "startup": dict(self.startup),
            "switch_counters": dict(parts.switch.counters) if parts.switch else {},
            "abuse_limits": parts.switch.limit_status() if parts.switch else {},
            "driver_counters": _driver_counters(parts.switch.driver) if parts.switch else {},
            "ovsdb_server": {
                "pid": server.pid if server else None,
                "running": server.running if server else False,
                "restarts": sup.restarts if sup else 0,
                "last_error": sup.last_error if sup else None,
            },
        }

    @property
    def ovsdb_server(self) -> OvsdbServer | None:
        return self._parts.server

    # -- stop ------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every started part, newest first; errors are logged, never raised. Idempotent."""
        parts, self._parts = self._parts, _Parts()
        steps: list[tuple[str, Callable[[], None] | None]] = [
            ("control socket", parts.control.stop if parts.control else None),
            ("gateway", parts.gateway.stop if parts.gateway else None),
            ("agent", parts.agent.stop if parts.agent else None),
            ("switch", parts.switch.stop if parts.switch else None),
            ("ovsdb-server", parts.supervisor.stop if parts.supervisor else None),
        ]
        for what, step in steps:
            if step is None:
                continue
            try:
                step()
            except Exception:
                log.exception("stopping the %s failed", what)
        if parts.supervisor is None and parts.server is not None:
            with contextlib.suppress(OvsdbError):
                parts.server.stop()
        if self._pid_file is not None:
            with contextlib.suppress(OSError):
                (self.state_dir / PID_FILE).unlink()
                self._pid_file.close()
            self._pid_file = None


def _driver_counters(driver: object) -> dict[str, int]:
    """The driver's counters; the Linux driver's with its rings' (``statistics``: drops,
    ``rx_truncated``, the GSO frames segmented and dropped, vswitch.ring)."""
    statistics = getattr(driver, "statistics", None)
    if callable(statistics):
        return dict(statistics())
    return dict(getattr(driver, "counters", {}))
