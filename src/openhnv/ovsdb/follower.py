"""A daemon that follows one OVSDB: its client, a first sync, and one worker thread.

The host agent and the gateway's compartment manager follow their host's own
ovsdb-server the same way, and ``Follower`` is that life cycle, once:

- ``start(first, timeout)``: connect an ``OvsdbClient`` (its ``on_batch``/``on_state``
  are the owner's), wait until its mirror holds every row, call ``first(client)`` to
  bring the world in line before ``start`` returns, then start the worker. When any of
  it fails the client is closed and the error raised. A second ``start`` without a
  ``stop`` is an ``OvsdbError``; a stopped follower may start again.
- the worker: with ``cond`` held, waits until ``pending()`` holds (or ``interval``
  seconds passed), then ``take()`` hands over the queued work; ``work(taken)`` then runs
  without the lock. The owner's callbacks and other threads queue work under ``cond``
  and notify it. ``work`` handles its own errors (each owner retries its own way).
- ``stop()``: the worker ends after its current ``work``, then the client closes. What
  the owner built stays (the switch's programming, the compartments).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from openhnv.ovsdb.client import ConnectionState, OvsdbClient
from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.mirror import RowEvent
from openhnv.ovsdb.schema import DATABASES
from openhnv.ovsdb.server import SslFiles

T = TypeVar("T")


class Follower(Generic[T]):
    """The client and worker thread of a daemon following the OVSDB at ``remote``."""

    def __init__(
        self,
        remote: str,
        *,
        name: str,
        pending: Callable[[], bool],
        take: Callable[[], T],
        work: Callable[[T], None],
        interval: float,
        on_batch: Callable[[list[RowEvent]], None],
        on_state: Callable[[ConnectionState], None],
        databases: Sequence[str] = DATABASES,
        ssl: SslFiles | None = None,
    ) -> None:
        self.remote = remote
        self.name = name
        self.cond = threading.Condition()
        self._pending = pending
        self._take = take
        self._work = work
        self._interval = interval
        self._on_batch = on_batch
        self._on_state = on_state
        self._databases = tuple(databases)
        self._ssl = ssl
        self._client: OvsdbClient | None = None
        self._stopping = False
        self._worker: threading.Thread | None = None

    @property
    def client(self) -> OvsdbClient | None:
        """The client while started, else None."""
        return self._client

    def start(self, first: Callable[[OvsdbClient], None], timeout: float) -> None:
        """Connect, wait for every row, ``first(client)``, then start the worker."""
        if self._client is not None:
            raise OvsdbError(f"{self.name}: start() called twice")
        with self.cond:
            self._stopping = False  # a stopped follower may be started again
        client = OvsdbClient(
            self.remote,
            self._databases,
            ssl=self._ssl,
            on_batch=self._on_batch,
            on_state=self._on_state,
        )
        self._client = client.start()
        try:
            client.wait_synced(timeout)
            first(client)
        except BaseException:
            client.close()
            self._client = None
            raise
        self._worker = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._worker.start()

    def stop(self) -> None:
        """End the worker (after its current work), then close the client."""
        with self.cond:
            self._stopping = True
            self.cond.notify_all()
        if self._worker is not None:
            self._worker.join()
            self._worker = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _run(self) -> None:
        while True:
            with self.cond:
                self.cond.wait_for(lambda: self._stopping or self._pending(), self._interval)
                if self._stopping:
                    return
                taken = self._take()
            self._work(taken)
