"""Fuzz targets: every parser that takes outside input, with the invariant it must keep.

A target is ``one(data: bytes) -> None``: it feeds ``data`` to one input boundary and
raises ``FuzzFailure`` when an invariant breaks; any other exception that escapes is a
crash (an error other than the layer's own domain error escaped). The invariants:

- only the layer's domain error escapes a parser (``PacketError``, ``ApiError``,
  ``FrameSpecError``, ``TopologyError``, ``ovs.db.error.Error``/``OvsdbError``); the
  data plane and the agent's row reader raise nothing at all (a bad frame is a counted
  drop, a bad row a ``Problem``);
- a refused input changes no state (the northbound store);
- where a codec builds, ``parse(build(parse(data))) == parse(data)``.

``TARGETS`` names them; ``fuzz/run.py`` (``make fuzz``) runs each for a time budget
(coverage-guided with atheris when it is installed, else ``mutate``), and
``tests/fuzz`` runs each with hypothesis for a few seconds in ``make test``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class FuzzFailure(AssertionError):
    """An invariant of a fuzz target broke (the message says which, on what)."""


@dataclass(frozen=True, slots=True)
class Target:
    """One input boundary: ``one`` checks one input; ``seeds`` are valid inputs to mutate."""

    name: str
    one: Callable[[bytes], None]
    seeds: Callable[[], tuple[bytes, ...]]
