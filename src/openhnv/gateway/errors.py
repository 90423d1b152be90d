"""The gateway layer's one error type."""

from __future__ import annotations


class GatewayError(Exception):
    """A compartment or connection that cannot be built; the message names what and why."""
