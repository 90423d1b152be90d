"""The daemons a compartment needs: its charon (strongSwan) and its VLAN access-port relays.

Each runs with private files under the compartment's directory and is known by its
pidfile there; it is stopped by that pid, never by name. A daemon started by this
process is reaped by it; one adopted after a restart of ``hnv host`` is only signalled.

charon hard-codes ``/var/run/charon.pid``, so each charon runs in a mount namespace of
its own (``ip netns exec`` makes one): the compartment's ipsec directory is bound on
``/mnt`` and its ``run`` directory on ``/run``, so the pidfile and the vici socket land
in that directory and charons of different compartments never meet. Its command line
reads ``openhnv-charon``, which is how a pidfile's process is recognised as ours.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from openhnv.gateway.errors import GatewayError
from openhnv.gateway.ipsec import CREDENTIAL_DIRECTORIES, INSIDE_LOG, IpsecFiles
from openhnv.gateway.tunnels import TunnelState, tunnel_states

CHARON_BINARY = "/usr/lib/ipsec/charon"
SWANCTL = "swanctl"
LIBIPSEC_PLUGIN = "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so"  # ESP in userspace
STRONGSWAN_PACKAGES = "strongswan-charon, strongswan-swanctl and libcharon-extra-plugins"
CHARON_NAME = "openhnv-charon"
INSIDE_DIR = str(INSIDE_LOG.parent)  # where charon sees the ipsec directory
RUN_DIR = "run"
PIDFILE = "charon.pid"
VICI = "charon.vici"
READY_SECONDS = 15.0
STOP_SECONDS = 3.0
POLL = 0.05
LOG_TAIL_BYTES = 64 * 1024  # enough for the last attempts of every connection
OURS = (b"openhnv",)


def alive(pid: int) -> bool:
    """The process runs (a zombie does not count)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def is_ours(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    return any(marker in cmdline for marker in OURS)


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def running(pidfile: Path) -> int | None:
    """The pid of the live daemon of ours named by ``pidfile``, if any."""
    pid = read_pid(pidfile)
    return pid if pid is not None and alive(pid) and is_ours(pid) else None


def stop(pidfile: Path) -> int | None:
    """Stop the daemon named by ``pidfile`` (TERM, then KILL); its pid if it ran."""
    pid = running(pidfile)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(POLL)
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _reap(pid)
    pidfile.unlink(missing_ok=True)
    return pid


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)


def charon_pidfile(ipsec_dir: Path) -> Path:
    return ipsec_dir / RUN_DIR / PIDFILE


def check_strongswan(binary: str = CHARON_BINARY, swanctl: str = SWANCTL) -> None:
    """``GatewayError`` naming what is missing when strongSwan cannot run here."""
    missing = [] if os.access(binary, os.X_OK) else [binary]
    missing += [] if shutil.which(swanctl) else [swanctl]
    missing += [] if os.path.exists(LIBIPSEC_PLUGIN) else [LIBIPSEC_PLUGIN]
    if missing:
        raise GatewayError(
            f"strongSwan is not installed: {' and '.join(missing)} not found "
            f"(Debian packages {STRONGSWAN_PACKAGES}; `make deps` installs them)"
        )


def start_charon(
    namespace: str, ipsec_dir: Path, files: IpsecFiles, binary: str = CHARON_BINARY
) -> int:
    """Write the files, start charon (``binary``) in ``namespace``, load the connections."""
    check_strongswan(binary)
    stop(charon_pidfile(ipsec_dir))
    run_dir = ipsec_dir / RUN_DIR
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / VICI).unlink(missing_ok=True)
    _write(ipsec_dir / "strongswan.conf", files.strongswan_conf, 0o644)
    _write(ipsec_dir / "swanctl" / "swanctl.conf", files.swanctl_conf)
    for directory in CREDENTIAL_DIRECTORIES:  # a removed connection's authority goes too
        shutil.rmtree(ipsec_dir / "swanctl" / directory, ignore_errors=True)
    for relative, text in files.credentials.items():
        _write(ipsec_dir / "swanctl" / relative, text)
    script = (
        f"mount --bind {ipsec_dir} {INSIDE_DIR} && mount --bind {INSIDE_DIR}/{RUN_DIR} /run "
        f"&& exec -a {CHARON_NAME} {binary}"
    )
    env = {**os.environ, "STRONGSWAN_CONF": f"{INSIDE_DIR}/strongswan.conf"}
    with open(ipsec_dir / "charon.out", "ab") as out:
        process = subprocess.Popen(
            ["ip", "netns", "exec", namespace, "bash", "-c", script],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + READY_SECONDS
    while not (run_dir / VICI).exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            tail = (ipsec_dir / "charon.out").read_text(errors="replace").strip()
            raise GatewayError(f"charon in {namespace} did not start: {tail[-300:] or 'no output'}")
        time.sleep(POLL)
    load_connections(ipsec_dir)
    return process.pid


def load_connections(ipsec_dir: Path) -> str:
    """``swanctl --load-all`` against the compartment's charon."""
    env = {
        **os.environ,
        "STRONGSWAN_CONF": str(ipsec_dir / "strongswan.conf"),
        "SWANCTL_DIR": str(ipsec_dir / "swanctl"),
    }
    argv = [SWANCTL, "--load-all", "--noprompt", "--uri", f"unix://{ipsec_dir / RUN_DIR / VICI}"]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise GatewayError(f"swanctl: {err}") from None
    if done.returncode != 0:
        raise GatewayError(f"swanctl --load-all: {(done.stderr or done.stdout).strip()[-300:]}")
    return done.stdout


def security_associations(ipsec_dir: Path) -> str:
    """``swanctl --list-sas`` of the compartment's charon (empty when it is down)."""
    env = {**os.environ, "STRONGSWAN_CONF": str(ipsec_dir / "strongswan.conf")}
    argv = [SWANCTL, "--list-sas", "--uri", f"unix://{ipsec_dir / RUN_DIR / VICI}"]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def charon_log_tail(ipsec_dir: Path, size: int = LOG_TAIL_BYTES) -> list[str]:
    """The last lines of the compartment's charon log (none when there is no log)."""
    path = ipsec_dir / INSIDE_LOG.name
    try:
        with open(path, "rb") as log_file:
            log_file.seek(max(0, path.stat().st_size - size))
            return log_file.read().decode(errors="replace").splitlines()[1:]
    except OSError:
        return []


def tunnels(ipsec_dir: Path, names: Sequence[str]) -> Mapping[str, TunnelState]:
    """Each IPSec connection's state and, when it is down, why (``openhnv.gateway.tunnels``)."""
    if not names:
        return {}
    return tunnel_states(names, security_associations(ipsec_dir), charon_log_tail(ipsec_dir))


def start_relay(pidfile: Path, trunk: str, access: str, vlan: int) -> int:
    """Start an access-port relay (``openhnv.vswitch.accessport``); its pid once ready."""
    stop(pidfile)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "openhnv.vswitch.accessport", "--trunk", trunk,
            "--access", access, "--vlan", str(vlan), "--pidfile", str(pidfile)]  # fmt: skip
    log = pidfile.with_suffix(".log")
    with open(log, "ab") as out:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    deadline = time.monotonic() + READY_SECONDS
    while not pidfile.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            tail = log.read_text(errors="replace").strip()
            raise GatewayError(f"relay {trunk}<->{access} did not start: {tail[-300:]}")
        time.sleep(POLL)
    return process.pid
