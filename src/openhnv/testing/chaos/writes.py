"""A stream of northbound writes during faults, and the proof that none acknowledged is lost.

``WriteStream`` runs in a thread: it asks ``plan(n)`` for the n-th write (a PUT whose body
carries the tag ``chaos: "<n>"``, or a DELETE) and sends it to whichever controller
replica answers. Each answer is logged per path: a 2xx is **acknowledged**; a 5xx or a
timeout is **uncertain** (the write may have landed or not, as with any store whose
answer is lost); a 4xx is **rejected** (a rejected request changes nothing); a
connection that no replica accepted was **not sent**. ``lost(get)`` then reads every
path once and names each one whose document is neither the last acknowledged version
nor a version written, uncertainly, after it.
A document is identified by its ``chaos`` tag; a deleted one by None.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from openhnv.lab.access import ApiAccess
from openhnv.lab.documents import Document
from openhnv.lab.rest import BASE_PATH

TAG = "chaos"
WRITE_PAUSE = 0.05  # seconds between writes: a stream, not a flood
WRITE_TIMEOUT = 5.0
_SERVER_ERROR = 500
_CLIENT_ERROR = 400
_NOT_FOUND = 404
NOT_SENT = 0  # no replica accepted the connection

Version = str | None  # a document's chaos tag; None: no document


@dataclass(frozen=True, slots=True)
class Write:
    """One northbound write: ``PUT path body`` or ``DELETE path`` (body None)."""

    path: str
    body: Document | None = None

    @property
    def method(self) -> str:
        return "DELETE" if self.body is None else "PUT"


def tagged(body: Document, version: int) -> Document:
    """``body`` with the tag that identifies this write."""
    return {**body, "tags": {TAG: str(version)}}


def version_of(document: Document | None) -> Version:
    if document is None:
        return None
    tags = document.get("tags") or {}
    value = tags.get(TAG) if isinstance(tags, dict) else None
    return None if value is None else str(value)


@dataclass(slots=True)
class PathLog:
    """What one path was told: its last acknowledged version, and the uncertain ones since."""

    acknowledged: bool = False
    version: Version = None
    uncertain: list[Version] = field(default_factory=list)

    def allowed(self) -> list[Version]:
        return [self.version, *self.uncertain]


@dataclass(frozen=True, slots=True)
class Loss:
    """A path whose stored document is not what the writes acknowledged."""

    path: str
    found: Version
    allowed: tuple[Version, ...]


@dataclass(slots=True)
class Counts:
    not_sent: int = 0
    acknowledged: int = 0
    uncertain: int = 0
    rejected: int = 0
    rejections: list[str] = field(default_factory=list)


class WriteStream:
    """Writes ``plan(0)``, ``plan(1)``, ... to the controller(s) until stopped; with
    ``access``, as the lab's admin."""

    def __init__(
        self,
        urls: Sequence[str],
        plan: Callable[[int], Write],
        transport: httpx.BaseTransport | None = None,
        access: ApiAccess | None = None,
    ) -> None:
        # access: the lab's credentials (its CA trusted, its admin certificate presented)
        verify = True if access is None else access.ssl_context()
        self._clients = [
            httpx.Client(base_url=u, timeout=WRITE_TIMEOUT, transport=transport, verify=verify)
            for u in urls
        ]
        self._current = 0
        self._plan = plan
        self._lock = threading.Lock()
        self._log: dict[str, PathLog] = {}
        self.counts = Counts()
        self._next = 0
        self._run = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._loop, name="chaos-writes", daemon=True)
        self._thread.start()

    def resume(self) -> None:
        self._idle.clear()
        self._run.set()

    def pause(self) -> None:
        """Stop after the write in flight; returns once it is answered."""
        self._run.clear()
        self._idle.wait(timeout=WRITE_TIMEOUT * len(self._clients) + 5)

    def close(self) -> None:
        self.pause()
        self._stop.set()
        self._run.set()
        self._thread.join(timeout=WRITE_TIMEOUT + 5)
        for client in self._clients:
            client.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._run.is_set():
                self._idle.set()
                self._run.wait()
                continue
            write = self._plan(self._next)
            self._next += 1
            self._record(write, self._send(write))
            self._stop.wait(WRITE_PAUSE)

    def _send(self, write: Write) -> int | None:
        """The answer's status; None when no answer came; NOT_SENT when no replica took it."""
        for _ in range(len(self._clients)):
            client = self._clients[self._current]
            try:
                response = client.request(write.method, BASE_PATH + write.path, json=write.body)
            except httpx.ConnectError:  # nothing sent: try another replica
                self._current = (self._current + 1) % len(self._clients)
                continue
            except httpx.HTTPError:
                return None
            return response.status_code
        return NOT_SENT

    def _record(self, write: Write, status: int | None) -> None:
        version = version_of(write.body)
        with self._lock:
            log = self._log.setdefault(write.path.lower(), PathLog())
            if status == NOT_SENT:  # refused at connect: it cannot have landed
                self.counts.not_sent += 1
            elif status is not None and status < _CLIENT_ERROR:
                self.counts.acknowledged += 1
                log.acknowledged, log.version, log.uncertain = True, version, []
            elif status is None or status >= _SERVER_ERROR:
                self.counts.uncertain += 1
                log.uncertain.append(version)
            else:
                self.counts.rejected += 1
                self.counts.rejections.append(f"{write.method} {write.path}: {status}")

    def lost(self, get: Callable[[str], Document | None]) -> list[Loss]:
        """Every path whose stored document contradicts the acknowledged writes.

        ``get(path)`` returns the document or None when the controller answers 404.
        """
        with self._lock:
            logs = {
                path: PathLog(log.acknowledged, log.version, list(log.uncertain))
                for path, log in self._log.items()
            }
        losses = []
        for path, log in sorted(logs.items()):
            found = version_of(get(path))
            if found not in log.allowed():
                losses.append(Loss(path, found, tuple(log.allowed())))
        return losses


def get_or_none(client: httpx.Client, path: str) -> Any:
    """A GET for ``lost``: the document, None on 404; raises on anything else."""
    response = client.get(BASE_PATH + path)
    if response.status_code == _NOT_FOUND:
        return None
    response.raise_for_status()
    return response.json()
