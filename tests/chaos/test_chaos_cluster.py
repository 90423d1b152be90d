"""The leading replica of a controller cluster (``hnv lab up --controllers 3``: three etcd
members, three replicas) killed under traffic and writes: another replica takes over,
no acknowledged write is lost, the hosts keep forwarding and end with the compiled rows.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openhnv.lab import orchestrator
from openhnv.lab.topology import load
from openhnv.testing.chaos import suite
from openhnv.testing.chaos.suite import ChaosLab, chaos_lab, fault_injections

pytestmark = [pytest.mark.root, pytest.mark.datapath]

FIGURE8 = Path(__file__).resolve().parents[2] / "examples" / "figure8.yaml"
REPLICAS = 3
FORWARDING_GAP_MS = 3000.0  # as in test_chaos_faults: hosts keep forwarding on their rows


@pytest.fixture(scope="module")
def cluster(chaos_figures: list[dict[str, Any]]) -> Iterator[ChaosLab]:
    topology = dataclasses.replace(load(FIGURE8), name=f"k{secrets.token_hex(3)}")
    with chaos_lab(topology, controllers=REPLICAS) as lab:
        yield lab
        chaos_figures.extend(r.figures() for r in lab.results)
    assert orchestrator.leftovers(topology.name) == []


@pytest.mark.parametrize("round_", range(suite.rounds()))
def test_leader_replica_killed(cluster: ChaosLab, round_: int) -> None:
    fault = suite.LEADER_KILL
    result = cluster.run(fault, fault_injections(cluster, 0.0)[fault])
    print(json.dumps(result.figures()))
    assert result.lost_writes == []
    assert result.convergence_s is not None, f"{fault}: not converged: {result.problems}"
    assert result.acknowledged > 0
    assert result.resumed
    assert result.gap_ms <= FORWARDING_GAP_MS
