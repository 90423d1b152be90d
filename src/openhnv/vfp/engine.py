"""The VFP engine: one host's VM ports, uplink, spaces and flow tables, and its packet path.

``VfpEngine`` owns its parts and does one job itself, processing packets:

- ``engine.state`` (``state.EngineState``): spaces, ports, the uplink, shared templates;
- ``engine.programming`` (``programming.Programming``): ``apply`` / ``apply_all`` of the
  commands of ``openhnv.vfp.commands``;
- ``engine.listing`` (``listing.Listing``): read-only tables and ``trace``;
- ``engine.offload`` (``offload.Offloader``): which unified flows a kernel fast path
  may execute (off unless a switch with one enables it);
- the engine: ``process_batch(port, frames, now)`` takes frames sent by VM ``port`` (or
  received on ``UPLINK``) and returns the emits the I/O layer must carry out;
  ``expire`` and ``retire`` end flows; ``revalidate`` decides flows again from their
  keys (after a change of policy, or for the entries a restarted fast path kept).

The packet path is built in layers, a module each: ``vmpath.VmPath`` (what VMs send and
receive, and the slow path), ``uplinkpath.UplinkPath`` (frames from the PA network),
``revalidation.Revalidation`` (deciding again from keys: revalidation, replays, a live
migration's import). A flow's bookkeeping (commit, pairs, connection origins, closing,
retirement, expiry) is ``vfp.lifecycle``. The clock is an argument (``now``) or the
callable given at construction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from openhnv.vfp import lifecycle
from openhnv.vfp.emits import UPLINK, Emit
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.limits import NO_LIMITS, PortLimits
from openhnv.vfp.listing import Listing
from openhnv.vfp.offload import Offloader
from openhnv.vfp.programming import Programming
from openhnv.vfp.revalidation import Revalidation
from openhnv.vfp.state import EngineState

DEFAULT_FLOW_CAPACITY = 1_000_000
DEFAULT_IDLE_TIMEOUT = 120.0
DEFAULT_CLOSE_TIMEOUT = 10.0  # a closed TCP pair stays this long after its last packet


class VfpEngine(Revalidation):
    """One host's VFP engine: its state, programming and listings, and the packet path."""

    def __init__(
        self,
        *,
        flow_capacity: int = DEFAULT_FLOW_CAPACITY,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        limits: PortLimits = NO_LIMITS,
    ) -> None:
        if flow_capacity < 1:
            raise PolicyError("flow_capacity", flow_capacity, "must be at least 1")
        if idle_timeout <= 0:
            raise PolicyError("idle_timeout", idle_timeout, "must be positive")
        if close_timeout <= 0:
            raise PolicyError("close_timeout", close_timeout, "must be positive")
        state = EngineState(flow_capacity, limits)
        super().__init__(state, Offloader(state), clock)
        self.programming = Programming(state)
        self.listing = Listing(state)
        self.idle_timeout = idle_timeout
        self.close_timeout = close_timeout

    def set_limits(self, limits: PortLimits) -> None:
        """The abuse limits of every VM port from now on (their buckets start full)."""
        state = self.state
        state.limits = limits
        for p in state.ports.values():
            p.meter = state.meter()

    def pause(self, port: str) -> float:
        """Seconds the I/O may leave VM ``port``'s queue unread (``PortMeter.pause``)."""
        p = self.state.ports.get(port)
        meter = None if p is None else p.meter
        return 0.0 if meter is None else meter.pause()

    # -- processing --------------------------------------------------------------------

    def process(self, port: str, frame: bytes, now: float | None = None) -> list[Emit]:
        """``process_batch`` of one frame."""
        return self.process_batch(port, (frame,), now)

    def process_batch(
        self, port: str, frames: Iterable[bytes], now: float | None = None
    ) -> list[Emit]:
        """The emits for ``frames`` sent by VM ``port``, or received on ``UPLINK``."""
        if now is None:
            now = self.clock()
        out: list[Emit] = []
        if port == UPLINK:
            self._from_uplink(frames, now, out)
        else:
            if not isinstance(frames, list | tuple):
                frames = list(frames)  # counted after the loop
            self._from_vm(self.state.port(port), frames, now, out)
        return out

    def expire(self, now: float | None = None) -> int:
        """Retire every pair idle longer than the close timeout (closing) or the idle
        timeout (open); returns how many flows were retired."""
        if now is None:
            now = self.clock()
        return lifecycle.expire(
            self.state, self.offload, now, self.idle_timeout, self.close_timeout
        )
