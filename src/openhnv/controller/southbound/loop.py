"""The southbound's one I/O thread: an asyncio event loop that every host link runs on.

A thousand hosts cost a thousand small tasks and sockets on this one loop, not two
threads each (the interpreter's lock made a thread per host wait its turn behind every
other: commits timed out at 30+ hosts, see docs/publisher.md). Other threads hand it
work with ``spawn`` (a coroutine, returns a concurrent future) and ``call`` (a plain
function, run soon in the loop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
STOP_TIMEOUT = 10.0


class SouthboundLoop:
    """An asyncio loop in a daemon thread of its own."""

    def __init__(self, name: str = "southbound") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def start(self) -> SouthboundLoop:
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    def spawn(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coroutine`` on the loop (from any thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def call(self, fn: Callable[[], Any]) -> None:
        """Run ``fn()`` in the loop thread soon (from any thread)."""
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(fn)

    @property
    def in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    def stop(self) -> None:
        """Cancel every task and end the thread."""
        if not self._started or self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(STOP_TIMEOUT)
