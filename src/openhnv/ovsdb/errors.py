"""The one error type of the ``openhnv.ovsdb`` layer."""

from __future__ import annotations


class OvsdbError(Exception):
    """An OVSDB operation failed; the message names the table, key and reason.

    ``table`` and ``key`` are set when the failure concerns one row.
    """

    def __init__(self, message: str, *, table: str | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.table = table
        self.key = key
