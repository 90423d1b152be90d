"""Two ControllerService replicas on one etcd store, in one process (a real etcd).

What the cluster promises at the service level: a write acknowledged by one replica is
read at once by the other; two conflicting writes (same If-Match) cannot both win; no
allocation (MAC, customer address, VSID, provider address) is handed out twice when
the replicas take writes at the same time; a replica's listeners hear changes made on
the other; the publisher's own writes never move an etag.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from openhnv.controller.errors import ApiError
from openhnv.controller.northbound.etcd import EtcdClient, parse_endpoints
from openhnv.controller.northbound.etcd_store import EtcdStore
from openhnv.controller.northbound.service import ControllerService
from openhnv.lab.etcd import EtcdCluster
from openhnv.testing.cluster import etcd_store
from openhnv.testing.polling import eventually

T = TypeVar("T")
PA_SUBNET = "/logicalNetworks/HNVPA/subnets/pa"
SUBNET = "/virtualNetworks/Blue/subnets/s1"


@pytest.fixture
def replicas(etcd_one: EtcdCluster) -> Iterator[tuple[ControllerService, ControllerService]]:
    first = etcd_store(etcd_one)
    second = EtcdStore(EtcdClient(parse_endpoints(etcd_one.url)), first.root)
    a, b = ControllerService(first), ControllerService(second)
    yield a, b
    a.close()
    b.close()


def fabric(service: ControllerService) -> None:
    pool = {"startIpAddress": "192.168.1.10", "endIpAddress": "192.168.1.250"}
    service.put(
        "/logicalNetworks/HNVPA",
        {
            "properties": {
                "networkVirtualizationEnabled": "True",
                "subnets": [
                    {
                        "resourceId": "pa",
                        "properties": {
                            "addressPrefix": "192.168.1.0/24",
                            "defaultGateways": ["192.168.1.1"],
                            "ipPools": [{"resourceId": "p", "properties": pool}],
                        },
                    }
                ],
            }
        },
    )
    service.put(
        "/macPools/default",
        {
            "properties": {
                "startMacAddress": "00-1D-D8-07-00-00",
                "endMacAddress": "00-1D-D8-07-FF-FF",
            }
        },
    )
    service.put(
        "/virtualNetworks/Blue",
        {
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.5.0.0/16"]},
                "logicalNetwork": {"resourceRef": "/logicalNetworks/HNVPA"},
                "subnets": [{"resourceId": "s1", "properties": {"addressPrefix": "10.5.0.0/16"}}],
            }
        },
    )


def dynamic_nic() -> dict[str, Any]:
    """A NIC whose MAC and customer address the controller allocates."""
    config = {"resourceId": "ipconfig1", "properties": {"subnet": {"resourceRef": SUBNET}}}
    return {"properties": {"ipConfigurations": [config]}}


def server(name: str) -> dict[str, Any]:
    pnic = {"resourceId": "pnic1", "properties": {"logicalSubnets": [{"resourceRef": PA_SUBNET}]}}
    return {
        "properties": {
            "connections": [{"managementAddresses": [f"unix:/nonexistent/{name}.sock"]}],
            "networkInterfaces": [pnic],
        }
    }


def put_call(
    service: ControllerService, path: str, body: dict[str, Any], if_match: str | None = None
) -> Callable[[], tuple[bool, dict[str, Any]]]:
    return lambda: service.put(path, body, if_match)


def at_once(calls: list[Callable[[], T]]) -> list[T | ApiError]:
    """Run the calls in threads released together; each one's result or ApiError."""
    barrier = threading.Barrier(len(calls))
    results: list[T | ApiError] = [ApiError(0, "", "not run")] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except ApiError as err:
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_a_write_on_one_replica_is_read_at_once_on_the_other(
    replicas: tuple[ControllerService, ControllerService],
) -> None:
    a, b = replicas
    fabric(a)
    for i in range(10):
        _, made = a.put(f"/networkInterfaces/n{i}", dynamic_nic())
        assert b.get(f"/networkInterfaces/n{i}")["etag"] == made["etag"]
        b.delete(f"/networkInterfaces/n{i}")
        with pytest.raises(ApiError) as gone:
            a.get(f"/networkInterfaces/n{i}")
        assert gone.value.status == 404


def test_the_same_if_match_on_two_replicas_exactly_one_wins(
    replicas: tuple[ControllerService, ControllerService],
) -> None:
    a, b = replicas
    fabric(a)
    a.put("/networkInterfaces/web", dynamic_nic())
    for trial in range(10):
        etag = b.get("/networkInterfaces/web")["etag"]
        body = dynamic_nic()  # each differs from the current NIC: neither is a no-op
        by_a = {**body, "tags": {"by": "a", "trial": str(trial)}}
        by_b = {**body, "tags": {"by": "b", "trial": str(trial)}}
        results = at_once(
            [
                put_call(a, "/networkInterfaces/web", by_a, etag),
                put_call(b, "/networkInterfaces/web", by_b, etag),
            ]
        )
        won = [r for r in results if not isinstance(r, ApiError)]
        lost = [r for r in results if isinstance(r, ApiError)]
        assert len(won) == 1, results
        assert [e.status for e in lost] == [412], results
        winner = won[0][1]["tags"]
        assert a.get("/networkInterfaces/web")["tags"] == winner
        assert b.get("/networkInterfaces/web")["etag"] == won[0][1]["etag"]


def test_concurrent_puts_on_both_replicas_never_share_an_allocation(
    replicas: tuple[ControllerService, ControllerService],
) -> None:
    a, b = replicas
    fabric(a)
    calls: list[Callable[[], tuple[bool, dict[str, Any]]]] = []
    for i in range(12):
        target = a if i % 2 else b
        calls.append(put_call(target, f"/networkInterfaces/n{i}", dynamic_nic()))
        calls.append(put_call(target, f"/servers/s{i}", server(f"s{i}")))
        vnet = {
            "properties": {
                "addressSpace": {"addressPrefixes": [f"10.{100 + i}.0.0/16"]},
                "subnets": [
                    {"resourceId": "s", "properties": {"addressPrefix": f"10.{100 + i}.0.0/24"}}
                ],
            }
        }
        calls.append(put_call(target, f"/virtualNetworks/v{i}", vnet))
    results = at_once(calls)
    assert not [r for r in results if isinstance(r, ApiError)]
    nics = [b.get(f"/networkInterfaces/n{i}")["properties"] for i in range(12)]
    macs = [n["privateMacAddress"] for n in nics]
    addresses = [n["ipConfigurations"][0]["properties"]["privateIPAddress"] for n in nics]
    pas = [
        a.get(f"/servers/s{i}")["properties"]["providerAddresses"][0]["address"] for i in range(12)
    ]
    vsids = [
        a.get(f"/virtualNetworks/v{i}")["properties"]["subnets"][0]["properties"]["virtualSubnetId"]
        for i in range(12)
    ]
    rdids = [a.get(f"/virtualNetworks/v{i}")["properties"]["routingDomainId"] for i in range(12)]
    for values in (macs, addresses, pas, vsids, rdids):
        assert len(set(values)) == len(values), values


def test_listeners_of_one_replica_hear_writes_made_on_the_other(
    replicas: tuple[ControllerService, ControllerService],
) -> None:
    a, b = replicas
    heard: list[str] = []
    lock = threading.Lock()

    def listener(refs: list[str]) -> None:
        with lock:
            heard.extend(refs)

    b.subscribe(listener)
    fabric(a)
    a.put("/networkInterfaces/Web1", dynamic_nic())
    eventually(lambda: "/networkInterfaces/Web1" in heard, "b hears a's NIC")
    a.delete("/networkInterfaces/Web1")
    eventually(lambda: heard.count("/networkInterfaces/Web1") == 2, "b hears the delete")


def test_publisher_states_move_no_etag_and_show_on_every_replica(
    replicas: tuple[ControllerService, ControllerService],
) -> None:
    a, b = replicas
    a.track_provisioning = b.track_provisioning = True
    fabric(a)
    _, nic = a.put("/networkInterfaces/web", dynamic_nic())
    assert nic["properties"]["provisioningState"] == "Updating"
    heard: list[list[str]] = []
    a.subscribe(heard.append)
    assert b.set_provisioning_state("/networkInterfaces/web", "Succeeded", nic["etag"])
    state = {"status": "Success", "detailedInfo": [{"code": "Success", "message": "ok"}]}
    b.set_configuration_state("/networkInterfaces/web", state)
    after = a.get("/networkInterfaces/web")
    assert after["etag"] == nic["etag"]
    assert after["properties"]["provisioningState"] == "Succeeded"
    assert after["properties"]["configurationState"] == state
    assert heard == []  # the publisher's own writes are no northbound change
    a.put("/networkInterfaces/web", {**dynamic_nic(), "tags": {"v": "2"}}, nic["etag"])
    assert not b.set_provisioning_state("/networkInterfaces/web", "Succeeded", nic["etag"])
    assert a.get("/networkInterfaces/web")["properties"]["provisioningState"] == "Updating"
