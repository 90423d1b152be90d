"""The vswitch layer's one error type, and a case its callers tell apart.

``VSwitchError``: a bad PA or uplink configuration, an unknown uplink or port, a driver
used before it was opened or after it was closed, a malformed port alias; the message
names what is wrong. ``DeviceError`` is also an ``OSError``: the kernel refused to set up
a device the switch needs (a packet ring on an interface, the tc ingress program), so a
caller that starts a driver may catch it with the other ``OSError``s of starting up.
The kernel fast path has its own subclass, ``fastpath.errors.FastPathError``.
"""

from __future__ import annotations


class VSwitchError(ValueError):
    """The vswitch layer's error; the message names the field or object and the value."""


class DeviceError(VSwitchError, OSError):
    """The kernel refused to set up a ring, socket or program on an interface."""
