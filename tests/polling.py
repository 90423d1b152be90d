"""Waiting for something another process or thread does, in every test tier."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
WAIT = 30.0  # an upper bound for a loaded 2-core machine: a passing wait ends at once


def eventually(fn: Callable[[], T], what: str, timeout: float = WAIT) -> T:
    """``fn()`` once it is truthy (polling); AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what} (last: {value!r})")
        time.sleep(0.02)
