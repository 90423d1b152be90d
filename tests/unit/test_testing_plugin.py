"""The plugin's datapath marker: a test that reads HNV_TEST_FASTPATH must carry it, so that
the root tier's off pass (``-m datapath``) keeps every test whose hosts follow the mode."""

from __future__ import annotations

import pytest

from openhnv.testing import datapath_mode
from openhnv.testing.datapath_mode import FASTPATH_ENV

pytest_plugins = ["pytester"]

PLUGIN = ("-p", "openhnv.testing.plugin", "-p", "no:benchmark")  # no: its xdist warning
TESTS = """
import pytest
from openhnv.testing.datapath_mode import fastpath_mode

@pytest.mark.datapath
def test_marked():
    assert fastpath_mode() == "off"

def test_unmarked_reads():
    assert fastpath_mode() == "off"

def test_unmarked_ignores():
    pass

@pytest.fixture
def mode():
    return fastpath_mode()

def test_unmarked_through_a_fixture(mode):
    assert mode == "off"
"""


@pytest.fixture
def off(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mode off (no probe of the kernel fast path); the inner runs count their reads
    apart, so that this test does not read the mode itself (for the outer plugin)."""
    monkeypatch.setenv(FASTPATH_ENV, "off")
    monkeypatch.setattr(datapath_mode, "_reads", [0])


@pytest.mark.usefixtures("off")
def test_a_test_that_reads_the_mode_unmarked_fails_and_names_the_marker(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_mode=TESTS)
    result = pytester.runpytest_inprocess(*PLUGIN)
    result.assert_outcomes(passed=4, errors=2)  # the two that read it unmarked
    result.stdout.fnmatch_lines(["*test_unmarked_reads reads HNV_TEST_FASTPATH but is not*"])
    result.stdout.fnmatch_lines(["*test_unmarked_through_a_fixture reads HNV_TEST_FASTPATH*"])


@pytest.mark.usefixtures("off")
def test_the_off_pass_selects_the_marked_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mode=TESTS)
    result = pytester.runpytest_inprocess(*PLUGIN, "-m", "datapath")
    result.assert_outcomes(passed=1, deselected=3)


@pytest.mark.usefixtures("off")
def test_a_module_that_reads_the_mode_when_imported_is_a_collection_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_module_level="""
from openhnv.testing.datapath_mode import fastpath_mode
MODE = fastpath_mode()

def test_nothing():
    pass
""",
        test_marked_module="""
import pytest
from openhnv.testing.datapath_mode import fastpath_mode
pytestmark = pytest.mark.datapath
MODE = fastpath_mode()

def test_nothing():
    pass
""",
    )
    result = pytester.runpytest_inprocess(*PLUGIN)
    result.assert_outcomes(errors=1)  # the session stops at a collection error
    result.stdout.fnmatch_lines(["*test_module_level.py reads HNV_TEST_FASTPATH*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED
