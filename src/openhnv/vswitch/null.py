"""A driver without I/O: the test's hand plays the wire (agent unit tests, ``--driver none``).

``NullDriver`` records what the switch sends (``sent`` per port, ``transmitted``) and lets
the caller play the other side: ``inject_port`` / ``remove_port`` report VM ports,
``inject_from_port`` / ``inject_from_uplink`` hand frames to the switch (each call one
polling round: ``round_done`` follows) and ``inject_neighbor`` reports a resolved next
hop. Uplink MACs are made up from the interface name (locally administered, stable).
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Sequence

from openhnv.vfp.emits import Transmit
from openhnv.vswitch.driver import FrameSink, PaConfig
from openhnv.vswitch.errors import VSwitchError


def made_up_mac(name: str) -> str:
    """A stable, locally administered unicast MAC for ``name``: ``02:xx:xx:xx:xx:xx``."""
    digest = zlib.crc32(name.encode()).to_bytes(4, "big") + len(name).to_bytes(1, "big")
    return ":".join(f"{b:02x}" for b in b"\x02" + digest)


class NullDriver:
    """A ``Driver`` whose wire is the caller; everything sent is recorded."""

    def __init__(self) -> None:
        self.sink: FrameSink | None = None
        self.sent: dict[str, list[bytes]] = {}
        self.transmitted: list[Transmit] = []
        self.provider_addresses: list[PaConfig] = []
        self.watched: list[str] = []
        self.opened = 0
        self.closed = 0
        self._ports: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- Driver ------------------------------------------------------------------------

    def open(self, sink: FrameSink) -> None:
        self.sink = sink
        self.opened += 1
        for port, mac in list(self._ports.items()):  # ports injected before opening
            sink.port_added(port, mac)

    def close(self) -> None:
        self.sink = None
        self.closed += 1

    def send_to_port(self, port: str, frames: Sequence[bytes]) -> None:
        with self._lock:
            self.sent.setdefault(port, []).extend(frames)

    def transmit(self, frames: Sequence[Transmit]) -> None:
        with self._lock:
            self.transmitted.extend(frames)

    def set_provider_addresses(self, pas: Sequence[PaConfig]) -> None:
        self.provider_addresses = list(pas)

    def uplink_mac(self, interface: str) -> str:
        if not interface:
            raise VSwitchError("uplink_mac: the interface name is empty")
        return made_up_mac(interface)

    def watch_neighbors(self, addresses: Sequence[str]) -> None:
        self.watched = list(addresses)

    def set_access_vlans(self, vlans: frozenset[int]) -> None:
        self.access_vlans = frozenset(vlans)

    # -- the test's side of the wire ---------------------------------------------------

    def _opened(self, what: str) -> FrameSink:
        if self.sink is None:
            raise VSwitchError(f"NullDriver.{what}: the driver is not open (HostSwitch.start)")
        return self.sink

    def inject_port(self, port: str, mac: str) -> None:
        """A VM port appears (reported at once when open, else on ``open``)."""
        self._ports[port] = mac
        if self.sink is not None:
            self.sink.port_added(port, mac)

    def remove_port(self, port: str) -> None:
        """A VM port disappears."""
        if self._ports.pop(port, None) is not None and self.sink is not None:
            self.sink.port_removed(port)

    def inject_from_port(self, port: str, frame: bytes) -> None:
        """VM port ``port`` sends ``frame``."""
        sink = self._opened("inject_from_port")
        sink.from_port(port, [frame])
        sink.round_done()

    def inject_from_uplink(self, frame: bytes) -> None:
        """A tunnel frame for a local PA arrives from the PA network."""
        sink = self._opened("inject_from_uplink")
        sink.from_uplink([frame])
        sink.round_done()

    def inject_neighbor(self, address: str, mac: str | None) -> None:
        """The next hop ``address`` (a remote PA or a gateway) resolved to ``mac`` / lost."""
        self._opened("inject_neighbor").pa_neighbor(address, mac)

    def take_sent(self, port: str) -> list[bytes]:
        """The frames sent to ``port`` since the last take, oldest first."""
        with self._lock:
            return self.sent.pop(port, [])

    def take_transmitted(self) -> list[Transmit]:
        """The frames transmitted since the last take, oldest first."""
        with self._lock:
            out, self.transmitted = self.transmitted, []
            return out
