"""The publisher's reports: states reach the service on ``flush``, a state that says what
it already says is not written again (also by a new leader), a store that refuses keeps
them queued, and a NIC whose port another host reports keeps its warning."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from test_controller_northbound_service_rules import build

from openhnv.controller.errors import StoreError
from openhnv.controller.northbound.service import SUCCEEDED, ControllerService
from openhnv.controller.northbound.store import SqliteStore
from openhnv.controller.southbound.binding import PortBinding
from openhnv.controller.southbound.reports import Reports
from openhnv.controller.southbound.status import (
    CODE_SUCCESS,
    PORT_ON_OTHER_HOST,
    SUCCESS,
    WARNING,
    configuration_state,
)

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
