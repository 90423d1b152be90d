"""Which NICs wait for which hosts' commits: the publisher's provisioning bookkeeping.

Pure data, no I/O, no clock. The publisher numbers each compile step; a host's link
reports the highest step whose state it has committed. A NIC whose change went out in
some step waits until every host that needs its rows has committed at least the step
that host was given (``Pending.need``); then it is ``Succeeded``.
"""

from __future__ import annotations

from collections.abc import Iterable, KeysView, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pending:
    """A NIC waiting for hosts: the sequence each host must have committed."""

    ref: str
    etag: str | None  # the etag compiled: a newer PUT makes this wait moot
    need: Mapping[str, int]  # server_id -> sequence


class Waiting:
    """NIC key -> ``Pending``, indexed by host so a host's commit checks only its NICs."""

    def __init__(self) -> None:
        self._pending: dict[str, Pending] = {}
        self._by_host: dict[str, set[str]] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._pending

    def __len__(self) -> int:
        return len(self._pending)

    def keys(self) -> KeysView[str]:
        return self._pending.keys()

    def add(self, key: str, pending: Pending) -> None:
        """Wait for ``pending`` (replacing what ``key`` waited for before)."""
        self.drop(key)
        self._pending[key] = pending
        for host in pending.need:
            self._by_host.setdefault(host, set()).add(key)

    def drop(self, key: str) -> None:
        pending = self._pending.pop(key, None)
        if pending is not None:
            for host in pending.need:
                found = self._by_host.get(host)
                if found is not None:
                    found.discard(key)
                    if not found:
                        del self._by_host[host]

    def done(self, hosts: Iterable[str], committed: Mapping[str, int]) -> list[Pending]:
        """The waits that ``committed`` (server_id -> sequence) completes, now dropped.

        Only NICs waiting for one of ``hosts`` (those whose commits moved) are looked at.
        """
        candidates: set[str] = set()
        for host in hosts:
            candidates |= self._by_host.get(host, set())
        finished: list[Pending] = []
        for key in sorted(candidates):
            pending = self._pending[key]
            if all(committed.get(h, 0) >= seq for h, seq in pending.need.items()):
                self.drop(key)
                finished.append(pending)
        return finished
