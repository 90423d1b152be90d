"""Physical_Port reports: which NIC a host says it runs, and binding it to that host.

A host agent writes a ``Physical_Port`` row named by a NIC's instanceId with
``status:attached=true`` when the VM's port appears. ``PortBinding.bind`` reads those
reports (as the links' port monitors deliver them):

- a NIC without ``server`` is bound to the reporting server (``bind_server``: stored, a
  new etag, the publisher recompiles and writes the bound port row to that host);
- a NIC whose ``server`` is that host needs nothing;
- a NIC whose ``server`` names another host keeps it (the northbound reference wins)
  and gets a ``Warning`` / ``PortReportedOnOtherHost`` naming both hosts, until it
  lives where its port is (``conflicts``);
- an unknown instanceId, or ``attached=false``, changes nothing.

``PortBinding.scale`` reads the same reports for a reservation the host scaled down (its
uplink is oversubscribed: ``status:qos_granted_mbps``, docs/southbound.md): such a NIC
is in ``scaled`` (a ``Warning`` / ``ReservationScaled``) until that host's row no longer
says so, or the port is detached or gone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from openhnv.controller.compiler.documents import ref_key
from openhnv.controller.errors import ApiError, StoreError
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.southbound.status import reservation_warning
from openhnv.ovsdb.mirror import RowEvent

log = logging.getLogger(__name__)

Document = dict[str, Any]


class PortBinding:
    """NICs by instanceId, and the ports hosts report that disagree with the northbound."""

    def __init__(self, service: ControllerService) -> None:
        self.service = service
        self.by_instance: dict[str, str] = {}  # casefolded instanceId -> NIC ref
        self.conflicts: dict[str, tuple[str, str]] = {}  # NIC key -> (reporter, message)
        self.scaled: dict[str, tuple[str, str]] = {}  # NIC key -> (reporter, message)

    def learn(self, docs: Iterable[Mapping[str, Any]]) -> None:
        """Remember the instanceId of each NIC GET document."""
        for doc in docs:
            instance = doc.get("instanceId")
            ref = doc.get("resourceRef")
            if isinstance(instance, str) and isinstance(ref, str):
                self.by_instance[instance.casefold()] = ref

    def bind(
        self,
        events: Sequence[tuple[str, RowEvent]],
        get: Callable[[str], Document | None],
    ) -> list[tuple[str, str]]:
        """Act on reported ports; the (NIC ref, warning) pairs to show."""
        warnings: list[tuple[str, str]] = []
        for server_id, event in events:
            row = event.new
            if row is None:
                continue
            status = row.get("status")
            if not isinstance(status, Mapping) or status.get("attached") != "true":
                continue
            name = row.get("name")
            ref = self.by_instance.get(str(name).casefold()) if name else None
            if ref is None:
                log.info("host %s reports port %r: no NIC has that instanceId", server_id, name)
                continue
            doc = get(ref)
            if doc is None:
                continue
            server = (doc.get("properties") or {}).get("server") or {}
            current = server.get("resourceRef") if isinstance(server, Mapping) else None
            reporter = f"/servers/{server_id}"
            if not current:
                try:
                    if self.service.bind_server(ref, reporter):
                        log.info("bound %s to %s, which reports its port", ref, reporter)
                except (ApiError, StoreError) as err:
                    log.warning("cannot bind %s to %s: %s", ref, reporter, err)
                self.conflicts.pop(ref_key(ref), None)
            elif ref_key(str(current)) != ref_key(reporter):
                message = (
                    f"host {server_id} reports this NIC's port attached, but its server is "
                    f"{current}: the northbound reference is kept (PUT the NIC to move it)"
                )
                self.conflicts[ref_key(ref)] = (server_id, message)
                warnings.append((ref, message))
            else:
                self.conflicts.pop(ref_key(ref), None)
        return warnings

    def scale(self, events: Sequence[tuple[str, RowEvent]]) -> list[str]:
        """Note the reservations hosts report scaled down (or granted in full again);
        the refs of the NICs reported (whose warning may have come, changed or gone:
        also one a previous leader showed)."""
        reported: dict[str, str] = {}
        for server_id, event in events:
            row = event.new or event.old or {}
            name = row.get("name") or event.key
            ref = self.by_instance.get(str(name).casefold()) if name else None
            if ref is None:
                continue
            status = event.new.get("status") if event.new is not None else None
            message = None
            if isinstance(status, Mapping) and status.get("attached") == "true":
                message = reservation_warning(server_id, status)
            key = ref_key(ref)
            reported[key] = ref
            if message is not None:
                self.scaled[key] = (server_id, message)
            elif key in self.scaled and self.scaled[key][0] == server_id:
                del self.scaled[key]
        return list(reported.values())
