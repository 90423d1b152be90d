"""What processing a frame produces: data the vswitch layer acts on (faucet style).

Every call of the engine returns a list of these; none of them has been acted on yet.
They are tuples (cheap to make on the fast path) with named fields.
"""

from __future__ import annotations

from typing import NamedTuple, TypeAlias


class Deliver(NamedTuple):
    """Hand ``frame`` to local VM port ``port``."""

    port: str
    frame: bytes


class Transmit(NamedTuple):
    """Send ``frame`` (a whole outer Ethernet frame) out of the uplink, from PA
    ``source_pa`` toward PA ``provider_address``. An access port's frame is sent as it is
    (802.1Q tag included) out of the uplink of ``source_pa``, toward ``BRIDGED``."""

    frame: bytes
    source_pa: str
    provider_address: str


class Punt(NamedTuple):
    """Hand ``frame`` from ``port`` up to the agent (e.g. ``reason="arp"``)."""

    port: str
    frame: bytes
    reason: str


class Drop(NamedTuple):
    """The frame was dropped at ``port`` (the VM port it came from or was going to, or
    ``UPLINK``) and counted there under ``reason``."""

    port: str
    reason: str


Emit: TypeAlias = Deliver | Transmit | Punt | Drop
BRIDGED = ""
"""The ``provider_address`` of a bridged frame (an access port's): it goes to no PA."""
UPLINK = "uplink"
"""The port name of the physical uplink (frames from the PA network)."""
