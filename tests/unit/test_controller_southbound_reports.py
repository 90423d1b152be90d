"""The publisher's reports: states reach the service on ``flush``, a state that says what
it already says is not written again (also by a new leader), a store that refuses keeps
them queued, a NIC whose port another host reports keeps its warning, and a NIC whose
reservation its host scaled down reads Warning until the host grants it in full."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from test_controller_northbound_service_rules import build

from openhnv.controller.errors import StoreError
from openhnv.controller.northbound.service import SUCCEEDED, ControllerService
from openhnv.controller.northbound.store import SqliteStore
from openhnv.controller.southbound.binding import PortBinding
from openhnv.controller.southbound.reports import GRANTED, Reports
from openhnv.controller.southbound.status import (
    CODE_SUCCESS,
    FAILURE,
    PORT_ON_OTHER_HOST,
    RESERVATION_SCALED,
    SUCCESS,
    WARNING,
    configuration_state,
)
from openhnv.ovsdb.mirror import RowEvent

NIC = "/networkInterfaces/Contoso-SQL"
SERVER = "/servers/host1"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        self.now += 60.0
        return self.now


class RefusingService(ControllerService):
    """A service whose store is down for the first ``refusals`` provisioning writes."""

    refusals = 1

    def set_provisioning_states(self, updates: Sequence[tuple[str, str, str | None]]) -> list[bool]:
        if self.refusals:
            self.refusals -= 1
            raise StoreError("the store is down")
        return super().set_provisioning_states(updates)


@pytest.fixture
def service() -> ControllerService:
    svc = RefusingService(SqliteStore(":memory:"))
    svc.refusals = 0
    build(svc)
    svc.track_provisioning = True
    return svc


def reports(service: ControllerService) -> Reports:
    return Reports(service, PortBinding(service), Clock())


def updating(service: ControllerService) -> str:
    """PUT the NIC again: ``Updating`` until the publisher says otherwise; its etag."""
    doc = service.get(NIC)
    body = {"properties": {k: v for k, v in doc["properties"].items() if k != "server"}}
    _, changed = service.put(NIC, body)
    assert changed["properties"]["provisioningState"] == "Updating"
    return str(changed["etag"])


def shown(service: ControllerService, ref: str) -> dict[str, object]:
    state = service.get(ref)["properties"]["configurationState"]
    assert isinstance(state, dict)
    return state


def test_a_nic_succeeds_on_flush_and_the_same_words_are_not_written_again(
    service: ControllerService,
) -> None:
    r = reports(service)
    r.set_nic(NIC, updating(service), SUCCEEDED, SUCCESS, CODE_SUCCESS, "Committed on 1 host.")
    r.flush()
    nic = service.get(NIC)
    assert nic["properties"]["provisioningState"] == SUCCEEDED
    first = shown(service, NIC)
    assert first["status"] == SUCCESS
    r.show(NIC, configuration_state(SUCCESS, CODE_SUCCESS, "Committed on 1 host.", 5.0))
    r.flush()
    assert shown(service, NIC) == first  # its lastUpdatedTime did not move


def test_a_new_leader_learns_what_was_shown(service: ControllerService) -> None:
    first = reports(service)
    first.show(SERVER, configuration_state(SUCCESS, CODE_SUCCESS, "connected", 1.0))
    first.flush()
    before = shown(service, SERVER)
    second = reports(service)
    second.learn()
    second.show(SERVER, configuration_state(SUCCESS, CODE_SUCCESS, "connected", 9.0))
    second.flush()
    assert shown(service, SERVER) == before


def test_states_the_store_refuses_stay_queued_for_the_next_flush(
    service: ControllerService,
) -> None:
    assert isinstance(service, RefusingService)
    service.refusals = 1
    r = reports(service)
    r.set_nic(NIC, updating(service), SUCCEEDED, SUCCESS, CODE_SUCCESS, "done")
    r.flush()
    assert r.unflushed
    assert service.get(NIC)["properties"]["provisioningState"] == "Updating"
    r.flush()
    assert not r.unflushed
    assert service.get(NIC)["properties"]["provisioningState"] == SUCCEEDED
    assert shown(service, NIC)["status"] == SUCCESS


def test_a_nic_reported_on_another_host_keeps_its_warning(service: ControllerService) -> None:
    binding = PortBinding(service)
    binding.conflicts[NIC.casefold()] = ("host2", "reported on host2")
    r = Reports(service, binding, Clock())
    r.set_nic(NIC, service.get(NIC)["etag"], SUCCEEDED, SUCCESS, CODE_SUCCESS, "done")
    r.flush()
    state = shown(service, NIC)
    assert state["status"] == WARNING
    assert state["detailedInfo"] == [
        {
            "source": "SoftwareDefinedNetworking",
            "code": PORT_ON_OTHER_HOST,
            "message": "reported on host2",
        }
    ]


ATTACHED = {"attached": "true", "reported_mac": "00:1d:d8:07:00:11"}
SCALED = {"qos_reserved_mbps": "100", "qos_granted_mbps": "62.5", "qos_uplink": "up0"}


def port_event(instance: str, status: dict[str, str] | None) -> tuple[str, RowEvent]:
    """host1's Physical_Port row of ``instance`` with ``status`` (None: the row went)."""
    row: dict[str, Any] | None = None if status is None else {"name": instance, "status": status}
    old: dict[str, Any] | None = {"name": instance} if status is None else None
    return ("host1", RowEvent("hardware_vtep", "Physical_Port", "u1", instance, old, row))


def test_a_scaled_reservation_warns_on_the_nic_until_granted_in_full(
    service: ControllerService,
) -> None:
    binding = PortBinding(service)
    doc = service.get(NIC)
    binding.learn([doc])
    r = Reports(service, binding, Clock())
    r.set_nic(NIC, doc["etag"], SUCCEEDED, SUCCESS, CODE_SUCCESS, "Committed on 1 host.")
    r.flush()

    def report(status: dict[str, str] | None) -> dict[str, object]:
        for ref in binding.scale([port_event(doc["instanceId"], status)]):
            r.rescale(ref)
        r.flush()
        return shown(service, NIC)

    state = report(ATTACHED | SCALED)
    assert state["status"] == WARNING
    assert state["detailedInfo"] == [
        {
            "source": "SoftwareDefinedNetworking",
            "code": RESERVATION_SCALED,
            "message": "Outbound reservation of 100 Mbit/s scaled to 62.5 Mbit/s on host"
            " host1: the reservations on its uplink up0 exceed the uplink's capacity.",
        }
    ]
    # a later commit of the NIC (a PUT) keeps saying so
    r.set_nic(NIC, service.get(NIC)["etag"], SUCCEEDED, SUCCESS, CODE_SUCCESS, "done")
    r.flush()
    assert shown(service, NIC)["detailedInfo"] == state["detailedInfo"]
    # granted in full again: Success
    state = report(ATTACHED)
    assert state["status"] == SUCCESS
    assert state["detailedInfo"] == [
        {"source": "SoftwareDefinedNetworking", "code": CODE_SUCCESS, "message": GRANTED}
    ]
    # scaled again, then the port goes: Success
    assert report(ATTACHED | SCALED)["status"] == WARNING
    assert report(None)["status"] == SUCCESS


def test_a_failed_nic_stays_failed_while_its_reservation_is_scaled(
    service: ControllerService,
) -> None:
    binding = PortBinding(service)
    doc = service.get(NIC)
    binding.learn([doc])
    r = Reports(service, binding, Clock())
    r.show(NIC, configuration_state(FAILURE, "PolicyCompileFailure", "bad", 1.0))
    for ref in binding.scale([port_event(doc["instanceId"], ATTACHED | SCALED)]):
        r.rescale(ref)
    r.flush()
    assert shown(service, NIC)["status"] == FAILURE
    assert NIC.casefold() in binding.scaled  # shown once the failure is gone
