"""Waiting for something another thread or process does: one ``eventually`` for every tier.

Tests are never timed, so a wait has a generous upper bound and returns as soon as its
condition holds; a wait that runs out is a failure naming what did not happen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
WAIT = 30.0  # an upper bound for a loaded 2-core machine: a passing wait ends at once
POLL_INTERVAL = 0.02


def eventually(
    fn: Callable[[], T], what: str, timeout: float = WAIT, interval: float = POLL_INTERVAL
) -> T:
    """``fn()`` once it is truthy (polling every ``interval`` s); AssertionError naming
    ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what} (last: {value!r})")
        time.sleep(interval)
