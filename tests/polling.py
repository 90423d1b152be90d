"""Kept only for the data-path tests that branch ``wire`` is rewriting (they import it by
this name); every other test uses ``openhnv.testing.polling``. Goes once ``wire`` lands."""

from openhnv.testing.polling import WAIT, eventually

__all__ = ["WAIT", "eventually"]
