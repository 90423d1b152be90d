"""Leader election on a real etcd: one leader that both candidates see, every live
replica listed, and a resignation that frees the leader key at once."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from openhnv.controller.cluster.election import Candidate, Election
from openhnv.controller.northbound.etcd import EtcdClient, parse_endpoints
from openhnv.lab.etcd import EtcdCluster
from openhnv.testing.polling import eventually

TTL = 3  # seconds: etcd's smallest lease with the members' 1.5 s election timeout


class Watched:
    """An election and what it told its listener."""

    def __init__(self, cluster: EtcdCluster, name: str, root: str) -> None:
        self.root = root
        self.heard: list[bool] = []
        self.lock = threading.Lock()
        client = EtcdClient(parse_endpoints(cluster.url))
        self.election = Election(client, Candidate(name, f"http://{name}"), root=root, ttl=TTL)
        self.election.start(self._heard)

    def _heard(self, leading: bool) -> None:
        with self.lock:
            self.heard.append(leading)


@pytest.fixture
def two(etcd_one: EtcdCluster) -> Iterator[tuple[Watched, Watched]]:
    root = f"/e-{uuid.uuid4().hex[:8]}"
    a, b = Watched(etcd_one, "a", root), Watched(etcd_one, "b", root)
    yield a, b
    for watched in (a, b):
        watched.election.stop()
        watched.election.client.close()


def leader(two: tuple[Watched, Watched]) -> Watched:
    """The one that leads, once exactly one does."""

    def one() -> Watched | None:
        leading = [w for w in two if w.election.leading]
        return leading[0] if len(leading) == 1 else None

    found = eventually(one, "one leader")
    assert found is not None
    return found


def test_exactly_one_leads_and_both_see_it(two: tuple[Watched, Watched]) -> None:
    first = leader(two)
    other = two[1] if first is two[0] else two[0]
    assert not other.election.leading
    eventually(lambda: other.election.leader() == first.election.me, "the other sees the leader")
    names = [c.replica_id for c in first.election.replicas()]
    assert names == ["a", "b"]
    assert first.heard == [True]
    assert other.heard == []


def test_a_resignation_hands_over_at_once(two: tuple[Watched, Watched]) -> None:
    first = leader(two)
    other = two[1] if first is two[0] else two[0]
    first.election.stop()  # revokes its lease: its key goes now, not when the lease expires
    _, held, _ = other.election.client.range(other.root + "/leader")
    assert [kv.value for kv in held] in ([], [other.election.me.value().encode()])
    eventually(lambda: other.election.leading, "the other takes over")
    assert first.heard == [True, False]
    assert other.heard == [True]
    assert [c.replica_id for c in other.election.replicas()] == [other.election.me.replica_id]
