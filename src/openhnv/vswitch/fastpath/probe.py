"""``probe()``: can the kernel fast path run here? One line saying why not.

For ``--fastpath auto``: None means it can (the object is built, libbpf loads, and
the kernel accepted every program, which is then unloaded again); otherwise the one
line to log, naming the missing piece: the object (and its make target), libbpf,
the privilege, or the kernel's refusal with libbpf's last words.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from openhnv.vswitch.fastpath.errors import FastPathError
from openhnv.vswitch.fastpath.fastpath import FastPath

_NO_PRIVILEGE = (os.strerror(errno.EPERM), os.strerror(errno.EACCES))


def probe(path: Path | None = None) -> str | None:
    """None when the fast path can be loaded here, else why not (one line)."""
    try:
        FastPath.load(path, flow_capacity=1, generation_slots=1).close()
    except FastPathError as exc:
        text = " ".join(str(exc).split())
        if any(reason in text for reason in _NO_PRIVILEGE):
            return f"no permission to load eBPF programs (root: CAP_BPF, CAP_NET_ADMIN): {text}"
        return text
    return None
