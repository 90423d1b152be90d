"""The engine's one error type: bad programming, named by its field and value."""

from __future__ import annotations


class PolicyError(ValueError):
    """A command the engine cannot apply; the message names the field and the value."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}={value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason
