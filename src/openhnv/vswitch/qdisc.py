"""The kernel's queueing disciplines that shape a capped VM port (the ``tc`` command).

A policer drops what exceeds a cap; TCP reads each drop as congestion and, when a
GSO frame of 64 KiB is dropped whole, often waits for a retransmission timeout, so a
policed TCP flow falls far below its cap. Where the kernel can queue, the caps are
shaped instead (docs/vfp.md, "QoS"):

- inbound (network -> VM): a ``tbf`` qdisc at the root of the port's veth host end.
  Every frame that enters the VM leaves there: those the kernel fast path redirects,
  and those the Python switch sends (the port's socket stops bypassing the qdisc);
- outbound (VM -> network), for what the kernel fast path encapsulates: an ``htb``
  class per capped port on each uplink; the fast path's tc program puts the frame in
  its port's class (``skb->priority`` = ``1:<ifindex>``), frames without a class go
  unshaped (htb's direct queue). What the Python switch sends is policed by the
  engine's QoS layer (its frames are whole, without GSO).

Each call runs ``tc`` once or twice; ``TcError`` says what failed.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

from openhnv.vfp.qos import shaper_burst_of
from openhnv.vswitch.errors import VSwitchError

HTB_HANDLE = 1  # the major number of the uplinks' htb root: classes are 1:<ifindex>
MAX_CLASS = 0xFFFE  # 1:ffff is the uplink scheduler's default class (vswitch.htb)
LATENCY_MS = 50
"""How long a frame may wait in a port's tbf before it is dropped (its queue's bound)."""
_TIMEOUT = 10
_CLASS_LINE = re.compile(rf"class htb {HTB_HANDLE}:([0-9a-f]+) ")
_DROPPED = re.compile(r"\(dropped ([0-9]+),")


class TcError(VSwitchError):
    """A ``tc`` command failed (the message names it and says why)."""


def run_tc(*argv: str, check: bool = True) -> str:
    try:
        done = subprocess.run(["tc", *argv], check=False, capture_output=True, text=True,
                              timeout=_TIMEOUT)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        raise TcError(f"tc {' '.join(argv)}: {exc}") from None
    if check and done.returncode != 0:
        raise TcError(f"tc {' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def class_priority(ifindex: int) -> int:
    """The ``skb->priority`` that puts a frame in port ``ifindex``'s htb class."""
    if not 0 < ifindex <= MAX_CLASS:
        raise TcError(f"ifindex {ifindex}: an htb class minor is 1..{MAX_CLASS}")
    return HTB_HANDLE << 16 | ifindex


def shape_port(ifname: str, mbps: int) -> None:
    """A tbf of ``mbps`` at the root of ``ifname`` (replacing what was there)."""
    run_tc("qdisc", "replace", "dev", ifname, "root", "tbf", "rate", f"{mbps}mbit",
        "burst", str(shaper_burst_of(mbps)), "latency", f"{LATENCY_MS}ms")  # fmt: skip


def unshape_port(ifname: str) -> None:
    """No root qdisc on ``ifname`` any more (nothing to do when there is none)."""
    run_tc("qdisc", "del", "dev", ifname, "root", check=False)


def _root_kind(ifname: str) -> str | None:
    shown: list[dict[str, Any]] = json.loads(run_tc("-j", "qdisc", "show", "dev", ifname) or "[]")
    for q in shown:
        if q.get("root"):
            return f"{q.get('kind')} {q.get('handle')}"
    return None


def shape_uplink_class(ifname: str, ifindex: int, mbps: int) -> None:
    """Port ``ifindex``'s class of ``mbps`` in ``ifname``'s htb (the htb made first)."""
    if _root_kind(ifname) != f"htb {HTB_HANDLE}:":
        run_tc("qdisc", "replace", "dev", ifname, "root", "handle", f"{HTB_HANDLE}:", "htb")
    rate = f"{mbps}mbit"
    run_tc("class", "replace", "dev", ifname, "parent", f"{HTB_HANDLE}:",
        "classid", f"{HTB_HANDLE}:{ifindex:x}", "htb", "rate", rate, "ceil", rate,
        "burst", str(shaper_burst_of(mbps)), "cburst", str(shaper_burst_of(mbps)))  # fmt: skip


def unshape_uplink_class(ifname: str, ifindex: int) -> None:
    """Port ``ifindex``'s class off ``ifname`` (nothing to do when there is none)."""
    run_tc("class", "del", "dev", ifname, "classid", f"{HTB_HANDLE}:{ifindex:x}", check=False)


def port_drops(ifname: str) -> int:
    """Frames the root qdisc of ``ifname`` dropped (0 without one)."""
    shown: list[dict[str, Any]] = json.loads(
        run_tc("-s", "-j", "qdisc", "show", "dev", ifname) or "[]"
    )
    return sum(int(q.get("drops", 0)) for q in shown if q.get("root") and q.get("kind") == "tbf")


def uplink_class_drops(ifname: str) -> dict[int, int]:
    """Port ifindex -> frames its htb class on ``ifname`` dropped (``tc -s class show``
    prints htb classes as text only)."""
    found: dict[int, int] = {}
    minor: int | None = None
    for line in run_tc("-s", "class", "show", "dev", ifname, check=False).splitlines():
        head = _CLASS_LINE.match(line)
        if head is not None:
            minor = int(head.group(1), 16)
            continue
        dropped = _DROPPED.search(line)
        if dropped is not None and minor is not None:
            found[minor] = int(dropped.group(1))
            minor = None
    return found
