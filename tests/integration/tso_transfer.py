"""A TCP transfer with TSO on between two namespaces (the sender's kernel hands its veth
GSO frames of up to 64 KB), and the data a receiving socket's frames carry: for the
tests of the sockets that take such frames as their segments (packet ring, raw socket)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from scapy.layers.inet import TCP
from scapy.layers.l2 import Ether

from openhnv.lab import netns
from openhnv.packet.ethernet import ETHERNET_HEADER_LEN
from openhnv.testing.namespaces import VETH_MTU

SERVER = ("10.9.0.2", 5000)
ADDRESSES = ("10.9.0.1/24", "10.9.0.2/24")  # the sender's, the receiver's (SERVER)
IDLE_SECONDS = 5.0
TRANSFER_SECONDS = 30.0


def transfer(
    sender: str, receiver: str, data: bytes, read: Callable[[], list[bytes]] | None = None
) -> list[bytes]:
    """Send ``data`` from namespace ``sender`` to a server at ``SERVER`` in ``receiver``
    (which must read all of it within ``TRANSFER_SECONDS``); every frame ``read``
    returned meanwhile and until it returns none."""
    server = netns.run_in(receiver, socket.create_server, SERVER)
    received = [0]
    try:

        def drain() -> None:
            conn, _ = server.accept()
            with conn:
                while chunk := conn.recv(1 << 16):
                    received[0] += len(chunk)

        thread = threading.Thread(target=drain, daemon=True)
        thread.start()
        client = netns.run_in(sender, socket.create_connection, SERVER, timeout=TRANSFER_SECONDS)
        with client:
            client.sendall(data)
        thread.join(timeout=TRANSFER_SECONDS)
        assert received[0] == len(data), f"{received[0]} of {len(data)} bytes arrived"
        frames: list[bytes] = []
        deadline = time.monotonic() + IDLE_SECONDS
        while read is not None and time.monotonic() < deadline:
            batch = read()
            if not batch and frames:
                break
            frames += batch
        return frames
    finally:
        server.close()


def carried(frames: list[bytes]) -> bytes:
    """The data of the transfer's segments among ``frames``, in sequence order; each
    segment must fit the veth's MTU and carry a correct TCP checksum."""
    segments: dict[int, bytes] = {}
    for frame in frames:
        packet = Ether(frame)
        if packet.haslayer(TCP) and packet[TCP].dport == SERVER[1] and packet[TCP].payload:
            recomputed = packet.copy()
            del recomputed[TCP].chksum
            assert Ether(bytes(recomputed))[TCP].chksum == packet[TCP].chksum
            assert len(frame) <= VETH_MTU + ETHERNET_HEADER_LEN  # cut at the MSS
            segments[packet[TCP].seq] = bytes(packet[TCP].payload)
    seq, data = min(segments), b""
    while seq in segments:
        data += segments[seq]
        seq += len(segments[seq])
    return data
