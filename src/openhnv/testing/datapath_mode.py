"""Which data path a test run exercises: the root tier runs once per fast-path mode.

``HNV_TEST_FASTPATH`` (``on``, ``off`` or ``auto``; unset: ``auto``) says whether the
hosts of the data-plane and lab tests run the kernel fast path; ``make test`` runs the
root tier twice, ``auto`` and ``off``. ``fastpath_mode()`` resolves ``auto`` (on when
the kernel and the built object allow it); ``fastpath_missing()`` is why a test of the
fast path itself (the ``fastpath`` marker of ``openhnv.testing.plugin``) cannot run in
this pass. Only tests whose hosts follow the mode (the ``datapath`` marker) run in the
``off`` pass; ``reads()`` lets the plugin fail a test that reads the mode unmarked.
"""

from __future__ import annotations

import functools
import os

from openhnv.vswitch.fastpath.probe import probe

FASTPATH_ENV = "HNV_TEST_FASTPATH"
FASTPATH_MODES = ("on", "off", "auto")


_reads = [0]  # how often the mode was read: the plugin's check of the datapath marker


def reads() -> int:
    """How often this process has read ``HNV_TEST_FASTPATH`` (through any function here)."""
    return _reads[0]


def requested_mode() -> str:
    """The mode asked for in the environment (``auto`` when unset)."""
    _reads[0] += 1
    mode = os.environ.get(FASTPATH_ENV, "auto")
    if mode not in FASTPATH_MODES:
        raise ValueError(f"{FASTPATH_ENV}={mode!r}: expected one of {FASTPATH_MODES}")
    return mode


@functools.cache
def _probed() -> str | None:
    return probe()


def fastpath_mode() -> str:
    """``on`` or ``off`` for this run: ``auto`` is on when the kernel fast path can run."""
    mode = requested_mode()
    if mode == "auto":
        return "on" if _probed() is None else "off"
    return mode


def fastpath_missing() -> str | None:
    """Why the kernel fast path's own tests skip in this pass (None: they run)."""
    if requested_mode() == "off":
        return f"{FASTPATH_ENV}=off: the Python data path's pass"
    why_not = _probed()
    return None if why_not is None else f"the kernel fast path cannot run here: {why_not}"
