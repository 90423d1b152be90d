"""Capture on the lab's PA links: what the hosts put on the physical network.

``PaCapture`` opens one AF_PACKET socket per host uplink *inside the fabric namespace*
(on the bridge port that faces the uplink), so every frame a host transmits is seen
exactly once, as it leaves the host, with its 802.1Q tag. ``tunnels`` decapsulates the
VXLAN / NVGRE ones with ``openhnv.packet`` into ``TunnelRecord``s (outer PAs, VNI/VSID,
inner CAs and ports); ``describe`` gives a one-line decode of any frame.
"""

from __future__ import annotations

import selectors
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from openhnv.lab import builder, netns
from openhnv.lab.topology import Topology
from openhnv.packet.addresses import ip_to_str, mac_to_str
from openhnv.packet.decode import decode, describe
from openhnv.packet.errors import PacketError
from openhnv.packet.frames import decapsulate
from openhnv.packet.ipv4 import IPv4
from openhnv.packet.tcp import Tcp
from openhnv.packet.udp import Udp
from openhnv.vswitch.afpacket import AfPacketSocket

_SELECT_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    """A frame as it left host ``host`` on the fabric-side port ``interface``."""

    host: str
    interface: str
    frame: bytes


@dataclass(frozen=True, slots=True)
class TunnelRecord:
    """One encapsulated packet on a PA link, decoded."""

    host: str
    encapsulation: str
    vlan: int | None
    outer_src: str
    outer_dst: str
    vsid: int
    inner_src_mac: str
    inner_dst_mac: str
    inner_src: str | None
    inner_dst: str | None
    inner_protocol: int | None
    inner_ttl: int | None
    inner_sport: int | None
    inner_dport: int | None
    line: str


class PaCapture:
    """Frames transmitted by every host of a lab, collected by a background thread."""

    def __init__(self, topology: Topology) -> None:
        names = builder.LabNames(topology.name)
        self.namespace = names.fabric
        self.frames: list[CapturedFrame] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: list[tuple[str, str, AfPacketSocket]] = []
        try:
            for host in topology.hosts:
                for index in range(host.uplinks):
                    peer = names.uplink_peer(host.name, index)
                    sock = netns.run_in(self.namespace, AfPacketSocket, peer)
                    self._sockets.append((host.name, peer, sock))
        except BaseException:
            self.close()
            raise
        self._thread = threading.Thread(target=self._run, name="pa-capture", daemon=True)

    def __enter__(self) -> PaCapture:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            for host, peer, sock in self._sockets:
                selector.register(sock, selectors.EVENT_READ, (host, peer))
            while not self._stop.is_set():
                for key, _ in selector.select(_SELECT_SECONDS):
                    host, peer = key.data
                    sock = cast(AfPacketSocket, key.fileobj)
                    batch = sock.recv_batch()
                    with self._lock:
                        self.frames.extend(CapturedFrame(host, peer, f) for f in batch)

    def snapshot(self) -> list[CapturedFrame]:
        with self._lock:
            return list(self.frames)

    def clear(self) -> None:
        with self._lock:
            self.frames.clear()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        for _, _, sock in self._sockets:
            sock.close()
        self._sockets = []


def tunnel_record(captured: CapturedFrame) -> TunnelRecord | None:
    """The decoded tunnel packet, or None when the frame is not VXLAN/NVGRE."""
    try:
        tunnel = decapsulate(captured.frame)
        inner = decode(tunnel.inner)
    except PacketError:
        return None
    eth = inner[0]
    ip = next((h for h in inner if isinstance(h, IPv4)), None)
    l4 = next((h for h in inner if isinstance(h, Tcp | Udp)), None)
    return TunnelRecord(
        host=captured.host,
        encapsulation=tunnel.encapsulation,
        vlan=tunnel.outer.vlan_id,
        outer_src=ip_to_str(tunnel.outer_ip.src),
        outer_dst=ip_to_str(tunnel.outer_ip.dst),
        vsid=tunnel.vsid,
        inner_src_mac=mac_to_str(getattr(eth, "src", b"\0" * 6)),
        inner_dst_mac=mac_to_str(getattr(eth, "dst", b"\0" * 6)),
        inner_src=None if ip is None else ip_to_str(ip.src),
        inner_dst=None if ip is None else ip_to_str(ip.dst),
        inner_protocol=None if ip is None else ip.protocol,
        inner_ttl=None if ip is None else ip.ttl,
        inner_sport=None if l4 is None else l4.src_port,
        inner_dport=None if l4 is None else l4.dst_port,
        line=describe(captured.frame),
    )


def tunnels(frames: Iterable[CapturedFrame]) -> list[TunnelRecord]:
    """Every VXLAN / NVGRE packet among ``frames``, decoded, in capture order."""
    return [r for r in (tunnel_record(f) for f in frames) if r is not None]
