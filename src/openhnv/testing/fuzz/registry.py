"""Every fuzz target, by name (``fuzz/run.py`` and ``tests/fuzz`` read this table)."""

from __future__ import annotations

from openhnv.testing.fuzz import Target, dataplane, inputs, packets, southbound

TARGETS: tuple[Target, ...] = (
    *packets.TARGETS,
    *dataplane.TARGETS,
    *southbound.TARGETS,
    *inputs.TARGETS,
)


def by_name(name: str) -> Target:
    """The target called ``name`` (``KeyError`` naming the known ones otherwise)."""
    for target in TARGETS:
        if target.name == name:
            return target
    raise KeyError(f"no fuzz target {name!r}: expected one of {[t.name for t in TARGETS]}")
