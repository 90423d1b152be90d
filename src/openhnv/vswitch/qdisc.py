"""The kernel's queueing disciplines that shape a capped VM port (the ``tc`` command).

A policer drops what exceeds a cap; TCP reads each drop as congestion and, when a
GSO frame of 64 KiB is dropped whole, often waits for a retransmission timeout, so a
policed TCP flow falls far below its cap. Where the kernel can queue, the caps are
shaped instead (docs/vfp.md, "QoS"):

- inbound (network -> VM): a ``tbf`` qdisc at the root of the port's veth host end.
  Every frame that enters the VM leaves there: those the kernel fast path redirects,
  and those the Python switch sends (the port's socket stops bypassing the qdisc);
- outbound (VM -> network): an ``htb`` class per capped or reserving port on each
  uplink (beside those, per port: fair shares), made by ``vswitch.htb`` (the uplink
  scheduler); the fast path's tc program puts the frame in its port's class
  (``skb->priority`` = ``class_priority(ifindex)``),
  the Python switch sends a port's frames with that priority where the uplink is
  scheduled, and polices them in the engine's QoS layer otherwise.

Each call runs ``tc`` once or twice; ``TcError`` says what failed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from typing import Any

from openhnv.vfp.qos import shaper_burst_of
from openhnv.vswitch.errors import VSwitchError

HTB_HANDLE = 1  # the major number of the uplinks' htb root: classes are 1:<ifindex>
MAX_CLASS = 0xFFFE  # 1:ffff is the uplink scheduler's default class (vswitch.htb)
LATENCY_MS = 50
"""How long a frame may wait in a port's tbf before it is dropped (its queue's bound)."""
_TIMEOUT = 10


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


def run_tc_batch(lines: Sequence[Sequence[str]], check: bool = True) -> None:
    """Run each of ``lines`` (``tc`` argv without the ``tc``) in one ``tc -batch``: one
    process for many changes (a port coming or going moves every fair share). With
    ``check`` the first failure stops the batch and raises; without it, ``-force``
    goes on past failures."""
    if not lines:
        return
    text = "".join(" ".join(line) + "\n" for line in lines)
    argv = ["tc", *([] if check else ["-force"]), "-batch", "-"]
    try:
        done = subprocess.run(argv, input=text, check=False, capture_output=True, text=True,
                              timeout=_TIMEOUT)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        raise TcError(f"tc -batch ({len(lines)} commands): {exc}") from None
    if check and done.returncode != 0:
        raise TcError(f"tc -batch ({len(lines)} commands): {done.stderr.strip()}")


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


def port_drops(ifname: str) -> int:
    """Frames the root qdisc of ``ifname`` dropped (0 without one)."""
    shown: list[dict[str, Any]] = json.loads(
        run_tc("-s", "-j", "qdisc", "show", "dev", ifname) or "[]"
    )
    return sum(int(q.get("drops", 0)) for q in shown if q.get("root") and q.get("kind") == "tbf")
