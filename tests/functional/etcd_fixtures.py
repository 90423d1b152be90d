"""etcd for the functional tests: private clusters on loopback in temp dirs, stopped by pid."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from openhnv.controller.northbound.etcd import EtcdClient, parse_endpoints
from openhnv.controller.northbound.etcd_store import EtcdStore
from openhnv.lab.etcd import EtcdCluster

needs_etcd = pytest.mark.skipif(
    shutil.which("etcd") is None, reason="etcd not installed (Debian etcd-server)"
)


@pytest.fixture(scope="session")
def etcd_one() -> Iterator[EtcdCluster]:
    """One etcd member for the whole session; tests keep apart by their own root."""
    if shutil.which("etcd") is None:
        pytest.skip("etcd not installed (Debian etcd-server)")
    directory = Path(tempfile.mkdtemp(prefix="hnv-etcd-"))
    cluster = EtcdCluster(directory, 1).start()
    yield cluster
    cluster.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def etcd_three(tmp_path: Path) -> Iterator[EtcdCluster]:
    """A three-member cluster of the test's own (tests kill members)."""
    if shutil.which("etcd") is None:
        pytest.skip("etcd not installed (Debian etcd-server)")
    cluster = EtcdCluster(tmp_path / "etcd", 3).start()
    yield cluster
    cluster.stop()


def etcd_store(cluster: EtcdCluster, timeout: float = 2.0) -> EtcdStore:
    """A store on ``cluster`` under a root of its own (``/t-<random>``)."""
    client = EtcdClient(parse_endpoints(cluster.url), timeout=timeout)
    return EtcdStore(client, f"/t-{uuid.uuid4().hex[:10]}")
