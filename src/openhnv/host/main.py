"""``hnv host``: run one host (its queries, ``hnv host status`` and the others, are
operator commands, apart from the daemon).

``hnv host --name NAME --state-dir DIR [--listen [ADDR:]PORT|unix:PATH|tcp:IP:PORT|
ssl:IP:PORT ...] [--pki DIR] [--driver none|linux] [--fastpath auto|on|off] [--uplink-mbps N]
[--xdp-meter] [--role host|gateway]
[--max-flows-per-port N] [--new-flow-rate PPS] [--broadcast-rate PPS] [--arp-rate PPS]``
starts the ``HostProcess`` (ovsdb-server, vSwitch, host agent,
control socket; with the gateway role the tenants' compartments too), prints ``ready``
once it serves, and stops everything on SIGTERM or SIGINT. Errors at start are one line
on stderr and exit status 1 (``--fastpath on`` where the kernel fast path cannot run is
one).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from openhnv.host.errors import HostError
from openhnv.host.supervisor import (
    DRIVERS,
    FASTPATH_MODES,
    HOST_ROLE,
    LOG_FILE,
    ROLES,
    HostConfig,
    HostProcess,
    expand_listen,
)
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.limits import (
    DEFAULT_ARP_RATE,
    DEFAULT_BROADCAST_RATE,
    DEFAULT_MAX_FLOWS,
    DEFAULT_NEW_FLOW_RATE,
    PortLimits,
)
from openhnv.vfp.policy import normalize_mac
from openhnv.vfp.qos import MAX_MBPS

PROG = "hnv host"
READY = "ready"
EXIT_FAILURE = 1
EXIT_USAGE = 2
BURST_SECONDS = 2.0  # a limit's bucket holds this many seconds of its rate


def _null_port(text: str) -> tuple[str, str]:
    port, sep, mac = text.partition("=")
    if not sep or not port or not mac:
        raise argparse.ArgumentTypeError(f"{text!r}: expected PORT=MAC")
    try:
        return port, normalize_mac(mac, "mac")
    except PolicyError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _listen(text: str) -> str:
    try:
        return expand_listen(text)
    except HostError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number, 0 for no limit")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected frames a second, 0 for no limit")
    return value


def port_limits(max_flows: int, new_flow_rate: float, broadcast_rate: float,
                arp_rate: float) -> PortLimits:  # fmt: skip
    """The limits of the command line: 0 is off, each burst is twice its rate."""

    def burst(rate: float) -> int:
        return max(1, round(BURST_SECONDS * rate))

    return PortLimits(
        max_flows=max_flows or None,
        new_flow_rate=new_flow_rate, new_flow_burst=burst(new_flow_rate),
        broadcast_rate=broadcast_rate, broadcast_burst=burst(broadcast_rate),
        arp_rate=arp_rate, arp_burst=burst(arp_rate),
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run a host: its ovsdb-server, the host agent and the vSwitch. "
        "Queries of a running host: hnv host {pa-ca-mapping,provider-addresses,status,"
        "problems} --state-dir DIR.",
    )
    parser.add_argument("--name", required=True, help="the host's server resourceId, e.g. host1")
    parser.add_argument("--state-dir", required=True, type=Path, metavar="DIR",
                        help="directory for the OVSDB files, sockets, pid and logs")  # fmt: skip
    parser.add_argument(
        "--listen",
        action="append",
        default=[],
        metavar="ADDR",
        type=_listen,
        help="OVSDB listener for the controller: [ADDR:]PORT is SSL (as a Network "
        "Controller dials a host: its management address, port 6640 unless the server's "
        "connection names another; needs --pki), or unix:PATH, tcp:IP:PORT, ssl:IP:PORT "
        "(repeatable; unix:DIR/ovsdb.sock is always served)",
    )
    parser.add_argument("--pki", type=Path, metavar="DIR",
                        help="PKI directory (hnv pki) for ssl: listeners")  # fmt: skip
    parser.add_argument(
        "--driver", choices=DRIVERS, default="none",
        help="vSwitch I/O: none (no frames) or linux (veth, AF_PACKET)",
    )  # fmt: skip
    parser.add_argument(
        "--fastpath", choices=FASTPATH_MODES, default="auto",
        help="the kernel fast path under --driver linux (docs/fastpath.md): auto (on when "
        "the kernel and the built object allow, else without it and one log line), on "
        "(refuse to start without it), off",
    )  # fmt: skip
    parser.add_argument(
        "--uplink-mbps", type=_uplink_mbps, default=None, metavar="N",
        help="under --driver linux: each uplink's capacity in Mbit/s for the VM ports' "
        "reservations (outboundReservedValue; default: the device's speed, else 10000); "
        "given, the uplinks are shaped to it (docs/vfp.md, \"QoS\")",
    )  # fmt: skip
    parser.add_argument(
        "--xdp-meter", action="store_true",
        help="under --driver linux: meter the VM ports' abuse limits in native XDP on "
        "each port's device instead of its socket filter (pays off where XDP runs before "
        "an skb exists; on a veth it costs the port's own TCP more: docs/vfp.md)",
    )  # fmt: skip
    parser.add_argument("--null-port", action="append", default=[], metavar="PORT=MAC",
                        type=_null_port, help="with --driver none: report this VM port "
                        "(no frames flow; for tests and demos of the control plane)")  # fmt: skip
    parser.add_argument(
        "--role", choices=ROLES, default=HOST_ROLE,
        help="gateway: also build each tenant's compartment (network namespace) for the "
        "virtual gateways the controller places here",
    )  # fmt: skip
    parser.add_argument("--compartment-prefix", metavar="PREFIX",
                        help="with --role gateway: namespace names of the compartments "
                        "(default hnv-cmp-<name>-)")  # fmt: skip
    limits = parser.add_argument_group(
        "abuse limits of every VM port (docs/vfp.md, 'Abuse limits'; 0 turns one off)"
    )
    limits.add_argument("--max-flows-per-port", type=_count, default=DEFAULT_MAX_FLOWS,
                        metavar="N", help="new flows beyond N of a port are dropped "
                        f"(flow_limit; default {DEFAULT_MAX_FLOWS})")  # fmt: skip
    limits.add_argument("--new-flow-rate", type=_rate, default=DEFAULT_NEW_FLOW_RATE,
                        metavar="PPS", help="frames a second a port may send to the slow "
                        f"path, bursts of twice that (new_flow_rate; default "
                        f"{DEFAULT_NEW_FLOW_RATE:g})")  # fmt: skip
    limits.add_argument("--broadcast-rate", type=_rate, default=DEFAULT_BROADCAST_RATE,
                        metavar="PPS", help="broadcast and multicast frames a second "
                        f"(broadcast_rate; default {DEFAULT_BROADCAST_RATE:g})")  # fmt: skip
    limits.add_argument("--arp-rate", type=_rate, default=DEFAULT_ARP_RATE, metavar="PPS",
                        help=f"ARP frames a second (arp_rate; default "
                        f"{DEFAULT_ARP_RATE:g})")  # fmt: skip
    parser.add_argument(
        "--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="host.log level",
    )  # fmt: skip
    return parser


def _setup_logging(state_dir: Path, level: str) -> logging.Handler | None:
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(state_dir / LOG_FILE)
    except OSError:
        return None  # HostProcess reports the unusable state dir
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def run(config: HostConfig, *, log_level: str = "INFO") -> int:
    """Run the host until SIGTERM or SIGINT; ``ready`` on stdout once it serves."""
    handler = _setup_logging(config.state_dir, log_level)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("signal %d: stopping", signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    host = HostProcess(config)
    try:
        try:
            host.start()
        except HostError as err:
            print(f"{PROG}: {err}", file=sys.stderr)
            return EXIT_FAILURE
        except Exception as err:  # a bug, not bad input: one line here, the trace in host.log
            logging.getLogger(__name__).exception("host start failed")
            print(f"{PROG}: start failed: {type(err).__name__}: {err}", file=sys.stderr)
            return EXIT_FAILURE
        if stop.is_set():
            return 0
        print(READY, flush=True)
        while not stop.wait(1.0):
            pass
        return 0
    finally:
        host.stop()
        for s, h in previous.items():
            signal.signal(s, h)
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()


def _uplink_mbps(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= MAX_MBPS:
        raise argparse.ArgumentTypeError(f"{text!r}: an integer in 1..{MAX_MBPS}")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    config = HostConfig(
        name=args.name,
        state_dir=args.state_dir,
        listen=tuple(args.listen),
        pki=args.pki,
        driver=args.driver,
        fastpath=args.fastpath,
        uplink_mbps=args.uplink_mbps,
        xdp_meter=args.xdp_meter,
        null_ports=tuple(args.null_port),
        role=args.role,
        compartment_prefix=args.compartment_prefix,
        limits=port_limits(
            args.max_flows_per_port, args.new_flow_rate, args.broadcast_rate, args.arp_rate
        ),
    )
    if args.compartment_prefix is not None and not args.compartment_prefix.startswith("hnv-"):
        print(f"{PROG}: --compartment-prefix must start with hnv-", file=sys.stderr)
        return EXIT_USAGE
    return run(config, log_level=args.log_level)
