"""The Linux driver's uplinks: their rings, opened in the driver's network namespace.

``Uplinks`` remembers the namespace it was made in (the host's); an uplink's ring is
opened there on first use (``open``), from whichever thread asks, under one lock, so
that a PA configured later by another thread finds its uplink. Which links are
uplinks: the names given, else every ``up<N>`` (``portlinks.UPLINK_NAME``). ``enter``
moves the calling thread into a namespace (the driver's loop thread enters the host's).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Callable, Sequence

from openhnv.vswitch.errors import DeviceError, VSwitchError
from openhnv.vswitch.portlinks import UPLINK_NAME
from openhnv.vswitch.ring import PacketRing

UPLINK_RX_FRAMES = 4096  # an uplink carries every flow of the host: a deeper ring (8 MB)
_CLONE_NEWNET = 0x40000000
_THIS_NAMESPACE = "/proc/thread-self/ns/net"
_LIBC = ctypes.CDLL(None, use_errno=True)


def enter(netns: int) -> None:
    """Move the calling thread into the network namespace open as fd ``netns``."""
    if _LIBC.setns(netns, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class Uplinks:
    """The uplink rings of one driver (see the module docstring)."""

    def __init__(self, names: Sequence[str] | None) -> None:
        """``names``: the uplinks (every ``up<N>`` when None)."""
        self.netns = os.open(_THIS_NAMESPACE, os.O_RDONLY | os.O_CLOEXEC)
        self.names = list(names) if names is not None else None
        self.rings: dict[str, PacketRing] = {}
        self.closed = False
        self._lock = threading.Lock()

    def open(self, name: str, opened: Callable[[str, PacketRing], None]) -> PacketRing:
        """The ring of uplink ``name``, opened on first use; ``opened(name, ring)`` then
        runs before any other thread gets it (still under the lock)."""
        with self._lock:
            ring = self.rings.get(name)
            if ring is not None:
                return ring
            if self.closed:
                raise VSwitchError("the Linux driver is closed")
            allowed = self.names
            if (allowed is not None and name not in allowed) or (
                allowed is None and not UPLINK_NAME.fullmatch(name)
            ):
                raise VSwitchError(f"uplink {name!r}: not an uplink of this driver")
            saved = os.open(_THIS_NAMESPACE, os.O_RDONLY | os.O_CLOEXEC)
            try:
                enter(self.netns)
                try:
                    ring = PacketRing(name, rx_frames=UPLINK_RX_FRAMES)
                except DeviceError as exc:
                    raise VSwitchError(f"uplink {exc}") from None
                finally:
                    enter(saved)
            finally:
                os.close(saved)
            self.rings[name] = ring
            opened(name, ring)
            return ring

    def ifindex(self, name: str) -> int | None:
        ring = self.rings.get(name)
        return None if ring is None else ring.ifindex

    def mtu(self, name: str) -> int | None:
        ring = self.rings.get(name)
        if ring is None:
            return None
        try:
            return ring.mtu
        except OSError:
            return None

    def close(self) -> None:
        """Close every ring and the namespace (idempotent; no uplink opens afterwards)."""
        self.closed = True
        with self._lock:
            for ring in self.rings.values():
                ring.close()
            self.rings.clear()
        if self.netns >= 0:
            with contextlib.suppress(OSError):
                os.close(self.netns)
            self.netns = -1
