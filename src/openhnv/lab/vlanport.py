"""An 802.1Q access port in userspace: the lab router's port on a VLAN PA subnet.

A physical switch gives the router an untagged access port in the PA subnet's VLAN
while the hosts' uplinks are tagged trunk ports. This kernel has neither bridge VLAN
filtering nor VLAN sub-interfaces, so a small relay (``openhnv.vswitch.accessport``)
does it: frames from the
trunk side tagged with the VLAN lose the tag and go to the access side; frames from
the access side get the tag and go to the trunk side; anything else is dropped. GSO
frames go on as their segments; what cannot be carried is counted and reported (see
``openhnv.vswitch.accessport``).

Run by the lab builder (``openhnv.lab.builder``) in the fabric namespace::

    python -m openhnv.lab.vlanport --netns NS --trunk IF --access IF --vlan N --pidfile P

It writes its pidfile once both sockets are open and exits on SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from openhnv.lab import netns
from openhnv.lab.errors import LabError
from openhnv.packet.ethernet import VLAN_ID_MAX
from openhnv.vswitch.accessport import access_to_trunk, open_side, relay, trunk_to_access

__all__ = ["access_to_trunk", "main", "relay", "trunk_to_access"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="openhnv.lab.vlanport", description=__doc__)
    parser.add_argument("--netns", required=True, help="namespace holding both interfaces")
    parser.add_argument("--trunk", required=True, help="interface carrying tagged frames")
    parser.add_argument("--access", required=True, help="interface towards the router")
    parser.add_argument("--vlan", required=True, type=int, help=f"VLAN ID, 1..{VLAN_ID_MAX - 1}")
    parser.add_argument("--pidfile", required=True, type=Path)
    args = parser.parse_args(argv)
    if not 1 <= args.vlan < VLAN_ID_MAX:
        print(f"vlanport: --vlan {args.vlan} is not in 1..{VLAN_ID_MAX - 1}", file=sys.stderr)
        return 2
    try:
        with netns.in_namespace(args.netns):
            trunk = open_side(args.trunk)
            access = open_side(args.access)
    except (LabError, OSError) as exc:
        print(
            f"vlanport: cannot open {args.trunk}/{args.access} in {args.netns}: {exc}",
            file=sys.stderr,
        )
        return 1
    tmp = args.pidfile.with_suffix(".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    tmp.replace(args.pidfile)
    try:
        relay(trunk, access, args.vlan)
    finally:
        trunk.close()
        access.close()
        args.pidfile.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
