"""The pytest plugin of openhnv's tests: ``pytest_plugins = ["openhnv.testing.plugin"]``.

- the ``root`` marker: a test marked with it is skipped, with the reason, when this
  process cannot make network namespaces (``privileges``);
- the ``fastpath`` marker: a test of the kernel fast path itself, skipped in the root
  tier's Python-path pass or where the fast path cannot run (``datapath_mode``);
- the ``datapath`` marker: a test whose hosts run the data path ``HNV_TEST_FASTPATH``
  asks for, so the only kind the ``off`` pass of ``make test`` runs again (``-m
  datapath``). A test, fixture or module that reads the mode without this marker (or
  ``fastpath``) fails, so that no data-path test drops out of that pass unnoticed;
- the ``long`` marker: a variant that repeats what a shorter test proves (the same
  checks on the other wire where the wire is not what is tested, a longer run): ``make
  test`` leaves it out, ``make chaos`` runs it (``root-long``, both data paths);
- the ``one_pass`` marker: a ``datapath`` test whose point is no data path (a command,
  a report, the control plane), so that its ``off`` run repeats what other tests check
  on the Python switch: ``make test`` runs it in the auto pass only, ``root-long`` in
  the ``off`` pass too;
- ``ovsdb_server``: a running ``ovsdb-server`` with the host's databases in a temp dir;
- ``netns_pair``: two fresh namespaces (``NamespacePair(a, b)``), removed afterwards;
- ``controller_process``: ``hnv controller`` on a free loopback port, store in a temp dir;
- ``host_processes``: starts ``hnv host`` processes on demand and stops them all after;
- ``etcd_one``: one etcd member for the session (tests keep apart by a root of their
  own, ``cluster.etcd_store``); ``etcd_three``: a three-member cluster of the test's own
  (tests kill members). Both skip, with the reason, where etcd is not installed.
- ``chaos_figures``: the chaos tier's figures for the session, written to
  ``HNV_CHAOS_JSON`` at its end (``make chaos``).

Every fixture removes what it made, also when the test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from openhnv.lab.etcd import EtcdCluster
from openhnv.ovsdb.server import OvsdbServer
from openhnv.testing import datapath_mode
from openhnv.testing.chaos import suite as chaos_suite
from openhnv.testing.cluster import etcd_missing
from openhnv.testing.datapath_mode import fastpath_missing, fastpath_mode
from openhnv.testing.namespaces import NamespacePair, namespace_pair
from openhnv.testing.privileges import root_missing
from openhnv.testing.processes import ControllerProcess, HostProcess

ROOT_MARKER = "root"
FASTPATH_MARKER = "fastpath"
DATAPATH_MARKER = "datapath"
LONG_MARKER = "long"
ONE_PASS_MARKER = "one_pass"
CONTROLLER_DB = "controller.db"
ETCD_MEMBERS = 3


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{ROOT_MARKER}: needs root and network namespaces")
    config.addinivalue_line("markers", f"{FASTPATH_MARKER}: tests the kernel fast path itself")
    config.addinivalue_line(
        "markers", f"{DATAPATH_MARKER}: its hosts run the data path HNV_TEST_FASTPATH asks for"
    )
    config.addinivalue_line(
        "markers", f"{LONG_MARKER}: repeats what a shorter test proves; make chaos runs it"
    )
    config.addinivalue_line(
        "markers", f"{ONE_PASS_MARKER}: a datapath test make test runs in the auto pass only"
    )


def _follows_mode(node: pytest.Item | pytest.Collector) -> bool:
    return any(node.iter_markers(DATAPATH_MARKER)) or any(node.iter_markers(FASTPATH_MARKER))


def _unmarked_read(node: pytest.Item | pytest.Collector, before: int) -> str | None:
    if datapath_mode.reads() == before or _follows_mode(node):
        return None
    return (
        f"{node.nodeid} reads {datapath_mode.FASTPATH_ENV} but is not marked"
        f" {DATAPATH_MARKER}: the root tier's off pass (-m {DATAPATH_MARKER}) would skip it"
    )


_READS_BEFORE = pytest.StashKey[int]()


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    before = datapath_mode.reads()
    report = yield
    if isinstance(collector, pytest.Module) and report.passed:
        problem = _unmarked_read(collector, before)
        if problem is not None:
            report.outcome, report.longrepr = "failed", problem
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> None:
    item.stash[_READS_BEFORE] = datapath_mode.reads()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.when == "teardown" and report.passed:
        problem = _unmarked_read(item, item.stash.get(_READS_BEFORE, datapath_mode.reads()))
        if problem is not None:
            report.outcome, report.longrepr = "failed", problem
    return report


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


@pytest.fixture(scope="session")
def chaos_figures() -> Iterator[list[dict[str, Any]]]:
    """The chaos tier's figures: each module adds its faults'; at the end of the run they
    are written as one JSON object to ``HNV_CHAOS_JSON`` when it is set (make chaos)."""
    figures: list[dict[str, Any]] = []
    mode = fastpath_mode()  # read here, in the setup of the first chaos test (datapath)
    yield figures
    report = os.environ.get(chaos_suite.REPORT_ENV, "")
    if report:
        document = {
            "fastpath": mode,
            "cut_seconds": chaos_suite.cut_seconds(),
            "rounds": chaos_suite.rounds(),
            "faults": figures,
        }
        Path(report).write_text(json.dumps(document, indent=2) + "\n")
