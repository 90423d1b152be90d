"""Faults under traffic (docs/testing.md "Chaos"): figure 8 in namespaces, iperf3 and a probe
stream between Contoso's VMs on host1 and host2, northbound writes all along; each fault
is injected, undone, and must leave no acknowledged write lost, every host's rows equal
to the compiler's, and traffic flowing again.

``HNV_CHAOS_SECONDS`` is how long a host's controller connection is cut (3 s here, 30 s
in ``make chaos``), ``HNV_CHAOS_ROUNDS`` how often each fault runs; the figures go to
``HNV_CHAOS_JSON`` (the plugin's ``chaos_figures``; ``make chaos`` prints them).
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
from openhnv.testing.chaos.suite import ChaosLab, FaultResult, chaos_lab, fault_injections

pytestmark = [pytest.mark.root, pytest.mark.datapath]

FIGURE8 = Path(__file__).resolve().parents[2] / "examples" / "figure8.yaml"
CUT_SECONDS = suite.cut_seconds()
ROUNDS = range(suite.rounds())
# Bounds for a loaded 2-core machine: loose, but a host that stops forwarding while it
# only lost its controller, or traffic that never comes back, fails them.
FORWARDING_GAP_MS = 3000.0  # the host keeps forwarding: no more than scheduling noise
OUTAGE_GAP_MS = 60000.0  # the data plane restarts: until the host is back


@pytest.fixture(scope="module")
def chaos(chaos_figures: list[dict[str, Any]]) -> Iterator[ChaosLab]:
    topology = dataclasses.replace(load(FIGURE8), name=f"c{secrets.token_hex(3)}")
    with chaos_lab(topology) as lab:
        yield lab
        chaos_figures.extend(r.figures() for r in lab.results)
    assert orchestrator.leftovers(topology.name) == []


def measured(chaos: ChaosLab, fault: str, gap_ms: float) -> None:
    result: FaultResult = chaos.run(fault, fault_injections(chaos, CUT_SECONDS)[fault])
    print(json.dumps(result.figures()))
    assert result.lost_writes == []
    assert result.convergence_s is not None, f"{fault}: not converged: {result.problems}"
    assert result.acknowledged > 0, f"{fault}: no write acknowledged during the fault"
    assert result.resumed, f"{fault}: no traffic after convergence"
    assert result.gap_ms <= gap_ms, f"{fault}: traffic gap {result.gap_ms} ms"


@pytest.mark.parametrize("round_", ROUNDS)
def test_host_connection_cut_keeps_forwarding_and_catches_up(chaos: ChaosLab, round_: int) -> None:
    measured(chaos, suite.CUT, FORWARDING_GAP_MS)


@pytest.mark.parametrize("round_", ROUNDS)
def test_ovsdb_server_killed(chaos: ChaosLab, round_: int) -> None:
    measured(chaos, suite.OVSDB_KILL, OUTAGE_GAP_MS)


@pytest.mark.parametrize("round_", ROUNDS)
def test_controller_killed(chaos: ChaosLab, round_: int) -> None:
    measured(chaos, suite.CONTROLLER_KILL, FORWARDING_GAP_MS)


@pytest.mark.parametrize("round_", ROUNDS)
def test_hnv_host_killed(chaos: ChaosLab, round_: int) -> None:
    measured(chaos, suite.HOST_KILL, OUTAGE_GAP_MS)


@pytest.mark.parametrize("round_", ROUNDS)
def test_host_namespace_restarted(chaos: ChaosLab, round_: int) -> None:
    measured(chaos, suite.NAMESPACE_RESTART, OUTAGE_GAP_MS)
