"""The Linux driver's polling loop: one thread, one epoll set, rounds of ready sockets.

``PollLoop`` is what ``vswitch.linux.LinuxDriver``'s thread runs (the driver makes the
thread, enters its namespace and registers its sockets). Each socket has a handler
(``watch``): a ring's reader, the link watcher's, the wake-up eventfd's. A round
(``round``) runs each ready socket's handler and sends what it queued (``flush``: one
system call per dirty ring), then the sink's deferred work (``round_done``). Work
posted from other threads (``post``) runs on the loop thread when the eventfd wakes
it: only the loop thread touches the rings. A handler's exception is logged and
counted (``loop_errors``), never ends the loop.

A VM port over its abuse limits is left unread for a while (``pause``): its socket
stays registered with no events and is polled again once the pause is over.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import select
import time
from collections import Counter, deque
from collections.abc import Callable, Container

from openhnv.vswitch.ring import PacketRing

TICK_SECONDS = 0.25
RESCAN_SECONDS = 1.0
_LOGGED_ERRORS = 20
_LOG_EVERY_ERRORS = 1000  # past the first ones, one log line in so many

log = logging.getLogger(__name__)


class PollLoop:
    """The sockets a driver polls, and its rounds (see the module docstring).

    ``pausable``: the fds ``pause`` may take off the poll set (the VM ports' rings),
    the driver's own table; ``dirty``: the rings with frames queued to send."""

    def __init__(self, counters: Counter[str], pausable: Container[int]) -> None:
        self.counters = counters
        self.dirty: set[PacketRing] = set()
        self.round_done: Callable[[], None] | None = None  # the sink's, once it is open
        self.running = False  # a thread serves the loop: posted work wakes it
        self.stopping = False
        self._pausable = pausable
        self._paused: dict[int, float] = {}  # ring fd -> when to poll it again
        self._posted: deque[Callable[[], None]] = deque()
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._poller = select.epoll()
        self._handlers: dict[int, Callable[[], None]] = {}

    def watch(self, fd: int, handler: Callable[[], None]) -> None:
        """Poll ``fd`` from now on; ``handler`` runs when it is ready."""
        self._handlers[fd] = handler
        self._poller.register(fd, select.EPOLLIN)

    def unwatch(self, fd: int) -> None:
        """Poll ``fd`` no more (paused or not)."""
        self._paused.pop(fd, None)
        self._handlers.pop(fd, None)
        with contextlib.suppress(OSError):
            self._poller.unregister(fd)

    def post(self, work: Callable[[], None]) -> None:
        """Run ``work`` on the loop thread (at its start when it does not run yet)."""
        self._posted.append(work)
        if self.running:
            os.eventfd_write(self._wake, 1)

    def stop(self) -> None:
        """Make ``serve`` return (from another thread)."""
        self.stopping = True
        os.eventfd_write(self._wake, 1)

    def start(self) -> None:
        """On the loop thread, before ``serve``: the work posted so far, and its sends."""
        self.watch(self._wake, self._on_wake)
        self._on_wake()
        self.flush()

    def serve(self, tick: Callable[[float], None], rescan: Callable[[], None]) -> None:
        """Poll and run rounds until ``stop``; ``tick(now)`` every ``TICK_SECONDS`` (its
        sends flushed) and ``rescan()`` every ``RESCAN_SECONDS``, both at once first."""
        poller = self._poller
        next_tick = next_scan = 0.0
        while not self.stopping:
            ready = poller.poll(self._poll_timeout())
            if ready:
                self.round(ready)
            now = time.monotonic()
            self._resume(now)
            if now >= next_tick:
                next_tick = now + TICK_SECONDS
                self.guard(functools.partial(tick, now))
                self.flush()
            if now >= next_scan:
                next_scan = now + RESCAN_SECONDS
                self.guard(rescan)

    def round(self, ready: list[tuple[int, int]]) -> None:
        """One polling round: each ready socket's handler and its sends, then the sink's
        deferred work (``round_done``)."""
        handlers = self._handlers
        for fd, _events in ready:
            handler = handlers.get(fd)
            if handler is not None:
                self.guard(handler)
            self.flush()
        if self.round_done is not None:
            self.guard(self.round_done)

    def guard(self, work: Callable[[], None]) -> None:
        """Run ``work``; an exception is logged and counted, never ends the loop."""
        try:
            work()
        except Exception:
            self.counters["loop_errors"] += 1
            errors = self.counters["loop_errors"]
            if errors <= _LOGGED_ERRORS or errors % _LOG_EVERY_ERRORS == 0:  # never flood
                log.exception("linux driver: error in the polling loop (%d so far)", errors)

    def flush(self) -> None:
        """Send what the rounds queued (one system call per dirty ring)."""
        if self.dirty:
            for ring in self.dirty:
                ring.flush()
            self.dirty.clear()

    def pause(self, fd: int, seconds: float) -> None:
        """Leave ring ``fd`` unread for ``seconds`` (its port is over its limits)."""
        if fd in self._paused or fd not in self._pausable:
            return
        self._poller.modify(fd, 0)
        self._paused[fd] = time.monotonic() + seconds
        self.counters["port_pauses"] += 1

    def close(self) -> None:
        """Close the epoll set and the eventfd (the sockets are their owners' to close)."""
        self._poller.close()
        if self._wake >= 0:
            with contextlib.suppress(OSError):
                os.close(self._wake)
            self._wake = -1

    def _resume(self, now: float) -> None:
        """Poll again the paused rings whose pause is over."""
        for fd, until in list(self._paused.items()):
            if until <= now:
                del self._paused[fd]
                if fd in self._pausable:
                    self._poller.modify(fd, select.EPOLLIN)

    def _poll_timeout(self) -> float:
        if not self._paused:
            return TICK_SECONDS
        soonest = min(self._paused.values()) - time.monotonic()
        return min(TICK_SECONDS, max(0.0, soonest))

    def _on_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._wake)
        posted = self._posted
        while posted:
            self.guard(posted.popleft())
