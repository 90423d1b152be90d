"""``hnv trace``: the dry run of one packet through a port of a running host.

``hnv trace [--state-dir DIR] [--json] --port P [--direction out|in] src=IP dst=IP
[proto=tcp|udp|icmp] [sport=N] [dport=N] [flags=S] [smac=MAC] [dmac=MAC] [ttl=N]``
(``openhnv.host.frame_spec`` lists every token). MACs left out come from the port and
the mapping space; ``--port uplink`` traces the encapsulated frame another host would
send to a local CA. Like ``vfpctrl /process-tuples``: every layer, group and rule the
packet meets, the header transposition and the result. Nothing in the switch changes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from openhnv.host.errors import FrameSpecError
from openhnv.host.frame_spec import parse_description
from openhnv.inspect.common import EXIT_USAGE, parse, run_query, state_options

PROG = "hnv trace"


def render_trace(result: dict[str, Any]) -> str:
    """The trace as text: the frame, then the engine's indented trace lines."""
    return "\n".join([f"frame: {result['frame']}", *result["lines"]])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        parents=[state_options()],
        description="Dry-run a packet through a port of a running host.",
        epilog="example: hnv trace --port <nic-instance-id> src=10.1.1.12 dst=10.1.1.11 "
        "proto=tcp dport=1433",
    )
    parser.add_argument("--port", required=True, help="port name (NIC instanceId) or 'uplink'")
    parser.add_argument(
        "--direction",
        choices=("out", "in"),
        help="out: sent by the VM (default); in: for the VM (uplink: always in)",
    )
    parser.add_argument("frame", nargs="+", metavar="NAME=VALUE", help="the frame description")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(build_parser(), argv)
    if isinstance(args, int):
        return args
    try:
        parse_description(args.frame)
    except FrameSpecError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return EXIT_USAGE
    params: dict[str, Any] = {"port": args.port, "tokens": list(args.frame)}
    if args.direction is not None:
        params["direction"] = args.direction
    return run_query(PROG, args.state_dir, args.json, "trace", params, render_trace)
