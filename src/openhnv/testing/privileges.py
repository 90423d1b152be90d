"""Whether this process may make network namespaces, open raw sockets and load eBPF (the
root tier and some benchmarks)."""

from __future__ import annotations

import os

ROOT_REASON = "needs root (network namespaces, raw sockets, eBPF)"


def is_root() -> bool:
    return os.geteuid() == 0


def root_missing() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    return None if is_root() else ROOT_REASON
