"""One ``hnv controller`` process: it serves the northbound API, and publishes while it leads.

``Replica`` watches its ``Leadership`` (``SoleLeader`` on SQLite, an etcd ``Election``
in a cluster) and starts a fresh southbound publisher when it becomes the leader (the
publisher compiles everything from the store and resyncs every host: only rows that
differ are written) and stops it when it no longer leads. Starting and stopping run in
the replica's own thread, so the election keeps renewing its lease meanwhile.

``status()`` is what ``GET /networking/v1/diagnostics/networkControllerState`` shows:
this replica, the leader, the live replicas and the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from openhnv.controller.cluster.election import Candidate, Leadership
from openhnv.controller.errors import StoreError
from openhnv.controller.northbound.service import ControllerService

log = logging.getLogger(__name__)


class Publishing(Protocol):
    """What the replica needs of a publisher."""

    def start(self) -> Any: ...

    def stop(self) -> None: ...

    def summary(self) -> dict[str, int]: ...


def _describe(candidate: Candidate | None) -> dict[str, str] | None:
    if candidate is None:
        return None
    return {"replicaId": candidate.replica_id, "url": candidate.url}


class Replica:
    """Runs ``make_publisher()`` exactly while ``leadership`` says this replica leads."""

    def __init__(
        self,
        service: ControllerService,
        leadership: Leadership,
        make_publisher: Callable[[], Publishing],
        *,
        store_name: str,
    ) -> None:
        self.service = service
        self.leadership = leadership
        self.make_publisher = make_publisher
        self.store_name = store_name
        self.publisher: Publishing | None = None
        self._cond = threading.Condition()
        self._wanted = False
        self._stopping = False
        self._since: str | None = None
        self._thread = threading.Thread(target=self._run, name="replica", daemon=True)

    def start(self) -> Replica:
        self._thread.start()
        self.leadership.start(self._leadership_changed)
        return self

    def stop(self) -> None:
        """Resign (a leader hands over at once), then stop the publisher."""
        self.leadership.stop()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()

    def _leadership_changed(self, leading: bool) -> None:
        with self._cond:
            self._wanted = leading
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._stopping or self._wanted != (self.publisher is not None)
                )
                stopping, wanted = self._stopping, self._wanted and not self._stopping
            if wanted and self.publisher is None:
                log.warning("replica %s leads: publishing southbound", self.me_id)
                self._since = datetime.now(UTC).isoformat(timespec="milliseconds")
                self.publisher = self.make_publisher()
                self.publisher.start()
            elif not wanted and self.publisher is not None:
                log.warning("replica %s no longer leads: stopping the publisher", self.me_id)
                publisher, self.publisher = self.publisher, None
                self._since = None
                publisher.stop()
            if stopping and self.publisher is None:
                return

    @property
    def me_id(self) -> str:
        return self.leadership.me.replica_id

    def status(self) -> dict[str, Any]:
        """The diagnostics document: who leads, which replicas live, the store."""
        leader = self.leadership.leader()
        try:
            replicas: list[dict[str, str] | None] = [
                _describe(c) for c in self.leadership.replicas()
            ]
            problem = None
        except StoreError as err:
            replicas, problem = [_describe(self.leadership.me)], str(err)
        properties: dict[str, Any] = {
            "replica": _describe(self.leadership.me),
            "leader": _describe(leader),
            "isLeader": self.leadership.leading,
            "publishing": self.publisher is not None,
            "leaderSince": self._since,
            "replicas": replicas,
            "store": self.store_name,
            "storeRevision": self.service.revision(),
        }
        publisher = self.publisher
        if publisher is not None:
            properties["southbound"] = publisher.summary()
        if problem is not None:
            properties["storeProblem"] = problem
        return {"resourceId": "networkControllerState", "properties": properties}
