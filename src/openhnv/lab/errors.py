"""The lab layer's error type: a lab step failed, and the message says which."""

from __future__ import annotations


class LabError(Exception):
    """Building, inspecting or removing a lab failed; the message names the step."""


class TopologyError(LabError, ValueError):
    """A topology file is malformed; the message starts with the offending key path."""
