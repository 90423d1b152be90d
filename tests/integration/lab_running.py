"""Shared by the root integration tests: a whole lab up (controller, hosts, REST), removed after.

``running_lab(text_or_path, encapsulation=...)`` gives the lab a unique name (``e`` + 6 hex
digits), brings it up with ``orchestrator.up`` and always removes it, then asserts that
nothing of it is left (namespaces, links, run directory, daemons by pid).
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
from collections.abc import Iterator
from pathlib import Path

from openhnv.lab import builder, daemons, orchestrator
from openhnv.lab.topology import Topology, load, parse
from openhnv.testing.datapath_mode import fastpath_mode

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def unique_name() -> str:
    return f"e{secrets.token_hex(3)}"


def topology_of(source: str | Path, encapsulation: str | None = None) -> Topology:
    """The topology of a file or a text under a unique name, its encapsulation changed."""
    base = load(source) if isinstance(source, Path) else parse(source)
    topology = dataclasses.replace(base, name=unique_name())
    if encapsulation is None:
        return topology
    return dataclasses.replace(topology, encapsulation=encapsulation)


@contextlib.contextmanager
def running_lab(topology: Topology) -> Iterator[orchestrator.RunningLab]:
    pids: list[int] = []
    try:
        running = orchestrator.up(topology, progress=print, fastpath=fastpath_mode())
        pids = list(daemons.recorded(running.run_dir).values())
        yield running
    finally:
        orchestrator.down(topology.name)
    assert orchestrator.leftovers(topology.name) == []
    assert [p for p in pids if builder.alive(p)] == []
    assert not builder.run_dir_of(topology.name).exists()
