"""Waiting for NICs against the real controller app, with a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from openhnv.api.app import create_app
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore
from openhnv.lab import resources
from openhnv.lab.errors import LabError
from openhnv.lab.rest import ControllerClient, instance_id, wait_succeeded
from openhnv.lab.topology import load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def controller() -> Iterator[ControllerClient]:
    app = create_app(ControllerService(SqliteStore(":memory:")))
    with TestClient(app) as http:
        client = ControllerClient(http)
        for resource in resources.infrastructure(load(EXAMPLES / "figure8.yaml"), Path("/x")):
            client.put(resource)
        yield client


def test_a_nic_that_does_not_exist_times_out_naming_it(controller: ControllerClient) -> None:
    clock = FakeClock()
    messages: list[str] = []
    with pytest.raises(LabError, match=r"not Succeeded after 5 s: ghost \(missing\)"):
        wait_succeeded(controller, ["ghost"], 5.0, messages.append, clock=clock, sleep=clock.sleep)
    assert clock.now >= 5.0
    assert messages == ["NICs programmed on their hosts: 0/1"]


def test_servers_without_hosts_are_named_in_the_timeout(controller: ControllerClient) -> None:
    clock = FakeClock()
    with pytest.raises(LabError, match=r"servers: host1: .*HostNotConnected"):
        wait_succeeded(controller, ["ghost"], 1.0, print, clock=clock, sleep=clock.sleep)


def test_created_nics_are_reported_with_their_instance_ids(controller: ControllerClient) -> None:
    topology = load(EXAMPLES / "figure8.yaml")
    document = controller.put(resources.nic_resource(topology.vm("contoso-sql")))
    assert len(instance_id(document)) == 36
    with pytest.raises(LabError, match="no instanceId"):
        instance_id({"resourceRef": "/networkInterfaces/x"})


def test_an_unreachable_controller_is_one_clear_error() -> None:
    client = ControllerClient.connect("http://127.0.0.1:9", timeout=0.5)
    try:
        assert not client.reachable()
        with pytest.raises(LabError, match="GET /servers: controller unreachable"):
            client.get("/servers")
    finally:
        client.close()


def test_a_cluster_client_moves_to_a_replica_that_answers(controller: ControllerClient) -> None:
    down = httpx.Client(base_url="http://127.0.0.1:9", timeout=0.5)  # a replica that is gone
    client = ControllerClient(down, replicas=[controller.http])
    assert client.get("/servers/host1")["resourceId"] == "host1"
    assert client.http is controller.http  # it stays with the replica that answered
    alone = ControllerClient.connect_any(["http://127.0.0.1:9"], timeout=0.5)
    try:
        with pytest.raises(LabError, match="controller unreachable"):
            alone.get("/servers")
    finally:
        alone.close()
        down.close()
