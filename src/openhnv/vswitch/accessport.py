"""An 802.1Q access port in userspace: one VLAN of a trunk link onto an untagged link.

This kernel has neither 802.1Q sub-interfaces nor bridge VLAN filtering, so a small
relay does what a switch's access port does: frames from the trunk tagged with the
VLAN lose the tag and go to the access link; frames from the access link get the tag
and go to the trunk; anything else is dropped. Several relays may share one trunk
(each takes its own VLAN). The lab's router port on a VLAN PA subnet
(the lab's vlanport) and a gateway compartment's VLAN leg use it.

GSO frames (a router or VM with TSO on behind the access link, a peer host's kernel
fast path sending tunnel GSO frames through a router) arrive whole, up to 64 KB: the
relay's sockets take them as their segments (``AfPacketSocket(segment_gso=True)``,
``vswitch.vnet``), each tagged or untagged like any frame. What the sockets could not
carry (a GSO frame they cannot cut, a truncated frame, a send the kernel refused) is
counted, reported on stderr as it happens (at most every ``REPORT_SECONDS``) and in one
line of all the counters when the relay stops.

``python -m openhnv.vswitch.accessport --trunk IF --access IF --vlan N --pidfile P``
runs one in the current namespace; it writes the pidfile once both sockets are open and
exits on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import VLAN_ID_MAX, pop_vlan, push_vlan
from openhnv.vswitch.afpacket import AfPacketSocket

BATCH = 64
POLL_SECONDS = 0.5
REPORT_SECONDS = 10.0
SOCKET_COUNTERS = ("rx_gso_frames", "rx_gso_segments", "rx_gso_unsupported", "rx_truncated",
                   "tx_dropped")  # fmt: skip
DROP_COUNTERS = ("rx_gso_unsupported", "rx_truncated", "tx_dropped")


def trunk_to_access(frame: bytes, vlan: int) -> bytes | None:
    """The untagged frame for the access side, or None if it is not of our VLAN."""
    try:
        vid, untagged = pop_vlan(frame)
    except PacketError:
        return None
    return untagged if vid == vlan else None


def access_to_trunk(frame: bytes, vlan: int) -> bytes | None:
    """The tagged frame for the trunk side, or None if it is malformed or already tagged."""
    try:
        vid, _ = pop_vlan(frame)
    except PacketError:
        return None
    return push_vlan(frame, vlan) if vid is None else None


def open_side(ifname: str) -> AfPacketSocket:
    """A socket for one side of the relay: GSO frames come as their segments."""
    return AfPacketSocket(ifname, segment_gso=True)


def counters(trunk: AfPacketSocket, access: AfPacketSocket) -> dict[str, int]:
    """What each side's socket counted (``SOCKET_COUNTERS``), as ``trunk:<name>`` and
    ``access:<name>``."""
    return {
        f"{side}:{name}": getattr(sock, name)
        for side, sock in (("trunk", trunk), ("access", access))
        for name in SOCKET_COUNTERS
    }


def _drops(counted: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counted.items() if k.partition(":")[2] in DROP_COUNTERS and v}


def relay(trunk: AfPacketSocket, access: AfPacketSocket, vlan: int) -> None:
    """Copy frames between the two sides until SIGTERM or SIGINT; report drops on
    stderr (see the module docstring)."""
    try:
        _relay(trunk, access, vlan)
    finally:
        print(f"accessport: counters {json.dumps(counters(trunk, access))}", file=sys.stderr)


def _relay(trunk: AfPacketSocket, access: AfPacketSocket, vlan: int) -> None:
    running = True

    def stop(_signum: int, _frame: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    reported: dict[str, int] = {}
    report_at = time.monotonic()
    with selectors.DefaultSelector() as selector:
        selector.register(trunk, selectors.EVENT_READ, True)
        selector.register(access, selectors.EVENT_READ, False)
        while running:
            now = time.monotonic()
            if now >= report_at:  # drops since the last line, at most every REPORT_SECONDS
                drops = _drops(counters(trunk, access))
                report_at = now + POLL_SECONDS
                if drops != reported:
                    print(f"accessport: dropped {json.dumps(drops)}", file=sys.stderr, flush=True)
                    reported = drops
                    report_at = now + REPORT_SECONDS
            for key, _ in selector.select(POLL_SECONDS):
                from_trunk = bool(key.data)
                source, target = (trunk, access) if from_trunk else (access, trunk)
                convert = trunk_to_access if from_trunk else access_to_trunk
                for frame in source.recv_batch(BATCH):
                    out = convert(frame, vlan)
                    if out is not None:
                        target.send(out)


def serve(trunk_name: str, access_name: str, vlan: int, pidfile: Path) -> None:
    """Open both sides, write ``pidfile``, relay until stopped, then remove it."""
    trunk = open_side(trunk_name)
    access = open_side(access_name)
    tmp = pidfile.with_suffix(".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    tmp.replace(pidfile)
    try:
        relay(trunk, access, vlan)
    finally:
        trunk.close()
        access.close()
        pidfile.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="openhnv.vswitch.accessport", description=__doc__)
    parser.add_argument("--trunk", required=True, help="interface carrying tagged frames")
    parser.add_argument("--access", required=True, help="interface of the VLAN, untagged")
    parser.add_argument("--vlan", required=True, type=int, help=f"VLAN ID, 1..{VLAN_ID_MAX - 1}")
    parser.add_argument("--pidfile", required=True, type=Path)
    args = parser.parse_args(argv)
    if not 1 <= args.vlan < VLAN_ID_MAX:
        print(f"accessport: --vlan {args.vlan} is not in 1..{VLAN_ID_MAX - 1}", file=sys.stderr)
        return 2
    try:
        serve(args.trunk, args.access, args.vlan, args.pidfile)
    except OSError as exc:
        print(f"accessport: cannot open {args.trunk}/{args.access}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
