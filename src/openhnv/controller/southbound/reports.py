"""What the publisher tells the northbound: provisioning and configuration states.

``Reports`` queues, during one publisher step, each NIC's ``provisioningState`` (with
the ``configurationState`` that goes with it) and each server's or NIC's
``configurationState``, and ``flush`` writes them to the service with one lock and few
store commits. It remembers what it said, so a state that says what it already says is
never written again, also after a failover (``learn``: what a previous leader showed,
from the shared store). When the store refuses (down, no quorum) the queue is kept for
the next step (``unflushed``). A NIC whose reservation its host scaled down reads
``Warning`` / ``ReservationScaled`` (``rescale``) instead of Success until that ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from openhnv.controller.compiler.documents import ref_key
from openhnv.controller.errors import StoreError
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.southbound.binding import PortBinding
from openhnv.controller.southbound.status import (
    CODE_SUCCESS,
    FAILURE,
    PORT_ON_OTHER_HOST,
    RESERVATION_SCALED,
    SUCCESS,
    WARNING,
    configuration_state,
)

log = logging.getLogger(__name__)

Said = tuple[str, str, str]  # status, code, message
GRANTED = "Committed; the outbound reservation is granted in full."


class Reports:
    """The states queued for the service and what each ref was last said to be."""

    def __init__(
        self, service: ControllerService, binding: PortBinding, clock: Callable[[], float]
    ) -> None:
        self.service = service
        self.clock = clock
        self._binding = binding
        self.reported: dict[str, Said] = {}  # ref key -> what its configurationState says
        self.unflushed = False  # states the store refused, queued again
        # Written to the service once per step (one lock, one store commit):
        self._nic_updates: list[tuple[str, str | None, str, dict[str, Any] | None]] = []
        self._configs: dict[str, dict[str, Any] | None] = {}

    def learn(self) -> None:
        """What a previous leader already showed (a shared store keeps it) need not be
        written again: a failover rewrites no unchanged state."""
        for key, doc in self.service.configuration_states().items():
            info = (doc.get("detailedInfo") or [{}])[0]
            said = (str(doc.get("status")), str(info.get("code")), str(info.get("message")))
            self.reported.setdefault(key, said)

    def withdraw(self, key: str, ref: str) -> None:
        """Clear the configurationState of ``ref`` (its key ``key``): what it said no
        longer holds."""
        del self.reported[key]
        self._configs[ref] = None

    def forget(self, key: str) -> None:
        """Forget what was said of ``key`` (its resource is gone)."""
        self.reported.pop(key, None)

    def show(self, ref: str, doc: dict[str, Any]) -> None:
        """Queue a configurationState unless it says what it already says."""
        info = doc["detailedInfo"][0]
        said = (doc["status"], info["code"], info["message"])
        if self.reported.get(ref_key(ref)) == said:
            return
        self.reported[ref_key(ref)] = said
        self._configs[ref] = doc

    def warn(self, ref: str, message: str) -> None:
        """Queue a ``Warning`` / ``PortReportedOnOtherHost`` for ``ref``."""
        self.show(ref, configuration_state(WARNING, PORT_ON_OTHER_HOST, message, self.clock()))

    def rescale(self, ref: str) -> None:
        """Show a NIC's ``Warning`` / ``ReservationScaled`` while its host scales its
        reservation down (``PortBinding.scaled``), and ``Success`` once that ends; a
        failure or a port reported on another host says more and stays."""
        key = ref_key(ref)
        said = self.reported.get(key)
        if key in self._binding.conflicts or (said is not None and said[0] == FAILURE):
            return
        scaled, now = self._binding.scaled.get(key), self.clock()
        if scaled is not None:
            self.show(ref, configuration_state(WARNING, RESERVATION_SCALED, scaled[1], now))
        elif said is not None and said[1] == RESERVATION_SCALED:
            self.show(ref, configuration_state(SUCCESS, CODE_SUCCESS, GRANTED, now))

    def set_nic(
        self, ref: str, etag: str | None, state: str, status: str | None, code: str, message: str
    ) -> None:
        """Queue a NIC's provisioningState (and configurationState) for ``flush``; a NIC
        whose port another host reports keeps that warning unless it failed, and one
        whose reservation its host scaled down says so instead of Success."""
        conflict = self._binding.conflicts.get(ref_key(ref))
        scaled = self._binding.scaled.get(ref_key(ref))
        doc: dict[str, Any] | None = None
        now = self.clock()
        if conflict is not None and status != FAILURE:
            doc = configuration_state(WARNING, PORT_ON_OTHER_HOST, conflict[1], now)
        elif scaled is not None and status == SUCCESS:
            doc = configuration_state(WARNING, RESERVATION_SCALED, scaled[1], now)
        elif status is not None:
            doc = configuration_state(status, code, message, now)
        self._nic_updates.append((ref, etag, state, doc))

    def flush(self) -> None:
        """Write the queued states to the service: one lock and few store commits each.

        When the store refuses (down, no quorum), they stay queued for the next step.
        """
        updates, self._nic_updates = self._nic_updates, []
        configs: dict[str, dict[str, Any] | None] = {}
        try:
            if updates:
                done = self.service.set_provisioning_states(
                    [(ref, state, etag) for ref, etag, state, _ in updates]
                )
                for (ref, _, _, doc), ok in zip(updates, done, strict=True):
                    if ok and doc is not None:  # else a newer PUT, or deleted: not ours to say
                        self.show(ref, doc)
                updates = []
            configs, self._configs = self._configs, {}
            if configs:
                self.service.set_configuration_states(configs)
        except StoreError as err:
            if not self.unflushed:
                log.warning("publisher: cannot store provisioning states yet: %s", err)
            self._nic_updates = updates + self._nic_updates
            self._configs = {**configs, **self._configs}
            self.unflushed = True
            return
        self.unflushed = False
