"""The pytest plugin of openhnv's tests: ``pytest_plugins = ["openhnv.testing.plugin"]``.

- the ``root`` marker: a test marked with it is skipped, with the reason, when this
  process cannot make network namespaces (``privileges``);
- the ``fastpath`` marker: a test of the kernel fast path itself, skipped in the root
  tier's Python-path pass or where the fast path cannot run (``datapath_mode``);
- ``ovsdb_server``: a running ``ovsdb-server`` with the host's databases in a temp dir;
- ``netns_pair``: two fresh namespaces (``NamespacePair(a, b)``), removed afterwards;
- ``controller_process``: ``hnv controller`` on a free loopback port, store in a temp dir;
- ``host_processes``: starts ``hnv host`` processes on demand and stops them all after;
- ``etcd_one``: one etcd member for the session (tests keep apart by a root of their
  own, ``cluster.etcd_store``); ``etcd_three``: a three-member cluster of the test's own
  (tests kill members). Both skip, with the reason, where etcd is not installed.

Every fixture removes what it made, also when the test fails.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from openhnv.lab.etcd import EtcdCluster
from openhnv.ovsdb.server import OvsdbServer
from openhnv.testing.cluster import etcd_missing
from openhnv.testing.datapath_mode import fastpath_missing
from openhnv.testing.namespaces import NamespacePair, namespace_pair
from openhnv.testing.privileges import root_missing
from openhnv.testing.processes import ControllerProcess, HostProcess

ROOT_MARKER = "root"
FASTPATH_MARKER = "fastpath"
CONTROLLER_DB = "controller.db"
ETCD_MEMBERS = 3


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{ROOT_MARKER}: needs root and network namespaces")
    config.addinivalue_line("markers", f"{FASTPATH_MARKER}: tests the kernel fast path itself")


@pytest.hookimpl(tryfirst=True)  # before any fixture of the test is set up
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker(ROOT_MARKER) is not None:
        reason = root_missing()
        if reason is not None:
            pytest.skip(reason)
    if item.get_closest_marker(FASTPATH_MARKER) is not None:
        reason = fastpath_missing()
        if reason is not None:
            pytest.skip(reason)


def require_root() -> None:
    """Skip the calling test or fixture unless namespaces can be made."""
    reason = root_missing()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def ovsdb_server(tmp_path: Path) -> Iterator[OvsdbServer]:
    """A running ovsdb-server with the host's databases, in a temp dir."""
    server = OvsdbServer(tmp_path / "host1")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def netns_pair() -> Iterator[NamespacePair]:
    """Two namespaces, ``a`` and ``b`` (``lo`` up), named ``hnv-t<unique>-a`` / ``-b``."""
    require_root()
    with namespace_pair() as pair:
        yield pair


@pytest.fixture
def controller_process(tmp_path: Path) -> Iterator[ControllerProcess]:
    """``hnv controller`` serving on loopback with its store in ``tmp_path``."""
    with ControllerProcess(tmp_path / CONTROLLER_DB) as controller:
        yield controller


class HostProcesses:
    """Starts ``hnv host`` processes for one test; ``close_all`` stops every one."""

    def __init__(self) -> None:
        self.started: list[HostProcess] = []

    def start(self, state_dir: Path, *extra: str, require_ready: bool = True) -> HostProcess:
        host = HostProcess(state_dir, *extra)
        self.started.append(host)
        if require_ready:
            assert host.ready, f"host did not print ready: {host.first_line!r} {host.stderr()}"
        return host

    def close_all(self) -> None:
        for host in self.started:
            host.close()


@pytest.fixture
def host_processes() -> Iterator[HostProcesses]:
    """Start ``hnv host --driver none`` processes with ``.start(state_dir, *extra)``."""
    hosts = HostProcesses()
    try:
        yield hosts
    finally:
        hosts.close_all()


def require_etcd() -> None:
    """Skip the calling test or fixture unless etcd is installed."""
    reason = etcd_missing()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def etcd_one() -> Iterator[EtcdCluster]:
    """One etcd member on loopback for the whole session, in a temp dir, stopped by pid."""
    require_etcd()
    directory = Path(tempfile.mkdtemp(prefix="hnv-etcd-"))
    cluster = EtcdCluster(directory, 1).start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def etcd_three(tmp_path: Path) -> Iterator[EtcdCluster]:
    """A three-member etcd cluster of the test's own (the test may kill members)."""
    require_etcd()
    cluster = EtcdCluster(tmp_path / "etcd", ETCD_MEMBERS)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
