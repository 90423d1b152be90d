"""The fast path's one error type, a kind of the vswitch layer's error."""

from __future__ import annotations

from openhnv.vswitch.errors import VSwitchError


class FastPathError(VSwitchError):
    """The kernel fast path cannot do what was asked: no object built, libbpf missing,
    the kernel refused a program or a map operation, an entry that does not fit. The
    message names the interface, map or field and the value."""
