"""The publisher's hosts: one ``HostLink`` per server, and the state each was given.

``HostLinks`` opens a link per server at its management address (``status.server_remotes``),
keeps it while the address stays, re-opens it at a new address and closes it when the
server goes. Each server's desired state is recorded with the publisher's step number
(its sequence) and the digest of its rows, and handed to its link; a link opened later
starts from the last state recorded. The links live on the one ``SouthboundLoop``.
Other threads read ``links`` (replaced, never changed in place) and the sequences.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from openhnv.controller.southbound.link import HostLink, LinkStatus
from openhnv.controller.southbound.loop import SouthboundLoop
from openhnv.controller.southbound.status import AddressError, server_remotes
from openhnv.ovsdb.mirror import RowEvent
from openhnv.ovsdb.rows import DesiredState
from openhnv.ovsdb.server import SslFiles
from openhnv.ovsdb.wire import Schema

RESYNC_CONCURRENCY = 16  # hosts read in full at the same time (bounds memory at start)
AUDIT_SPACING = 0.1  # seconds per host: 1,000 hosts are audited every 100 s, not 30


class HostLinks:
    """One link per server, each given its desired state at a sequence."""

    def __init__(
        self,
        loop: SouthboundLoop,
        *,
        ssl: SslFiles | None,
        audit_every: float | None,
        on_status: Callable[[str], None],
        on_port: Callable[[str, RowEvent], None],
    ) -> None:
        self.loop = loop
        self.ssl = ssl
        self.audit_every = audit_every
        self._on_status = on_status
        self._on_port = on_port
        self.links: dict[str, HostLink] = {}  # copy on write: other threads read it
        self.address_errors: dict[str, AddressError] = {}
        self._lock = threading.Lock()
        self._host_seq: dict[str, int] = {}
        self._states: dict[str, DesiredState] = {}
        self._digests: dict[str, str | None] = {}
        self._schema = Schema()
        self._resyncs = asyncio.Semaphore(RESYNC_CONCURRENCY)

    def has_state(self, server_id: str) -> bool:
        """Whether a state was ever given to ``server_id`` (and it is not gone)."""
        return server_id in self._states

    def sequences(self) -> dict[str, int]:
        """Server -> the sequence of the last state given to it."""
        with self._lock:
            return dict(self._host_seq)

    def statuses(self) -> dict[str, LinkStatus]:
        """The status of every host link, by server resourceId."""
        return {server_id: link.status() for server_id, link in list(self.links.items())}

    def give(
        self,
        server_id: str,
        state: DesiredState,
        seq: int,
        changed: dict[str, set[str]] | None,
        digest: str | None,
    ) -> None:
        """Record ``state`` as the host's desired state at ``seq``; its link sends it."""
        self._states[server_id] = state
        with self._lock:
            self._host_seq[server_id] = seq
        self._digests[server_id] = digest
        link = self.links.get(server_id)
        if link is not None:
            link.submit(state, seq, changed, digest)

    def servers(self, docs: Sequence[Mapping[str, Any]]) -> set[str]:
        """Open, keep, re-open or close one link per server, at its management address;
        returns the servers that are gone (their states forgotten)."""
        wanted, errors = server_remotes(docs)
        self.address_errors = errors
        links = dict(self.links)  # copy on write: other threads read self.links
        for server_id in list(links):
            if wanted.get(server_id) != links[server_id].remote:
                links.pop(server_id).close()
        gone = set()
        for server_id in list(self._states):
            if server_id not in wanted and server_id not in errors:
                gone.add(server_id)
                self._states.pop(server_id, None)
                self._digests.pop(server_id, None)
                with self._lock:
                    self._host_seq.pop(server_id, None)
        for server_id, remote in wanted.items():
            if server_id in links:
                continue
            link = HostLink(
                server_id,
                remote,
                loop=self.loop,
                ssl=self.ssl,
                on_status=self._on_status,
                on_port=self._on_port,
                audit_every=self.audit_every,
                schema=self._schema,
                resyncs=self._resyncs,
            )
            links[server_id] = link
            state = self._states.get(server_id)
            if state is not None:
                with self._lock:
                    seq = self._host_seq[server_id]
                link.submit(state, seq, None, self._digests.get(server_id))
            link.start()
        if self.audit_every is not None:  # audits cost a full read: pace them by host count
            every = max(self.audit_every, AUDIT_SPACING * len(links))
            for link in links.values():
                link.audit_every = every
        self.links = links
        return gone

    def close(self) -> None:
        """Close every link."""
        links, self.links = self.links, {}
        for link in links.values():
            link.close()
