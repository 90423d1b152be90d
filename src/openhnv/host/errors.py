"""The host layer's errors: one base, ``HostError``, and the cases callers tell apart."""

from __future__ import annotations


class HostError(Exception):
    """The host cannot start or run; the message says what to fix."""


class ControlError(HostError):
    """A request the control socket refused, or a host that cannot be reached."""


class FrameSpecError(HostError, ValueError):
    """A frame description that cannot be turned into a frame; the message names the token."""
