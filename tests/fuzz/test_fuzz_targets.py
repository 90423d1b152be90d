"""The short form of ``make fuzz``: every fuzz target, a few hundred inputs each.

Each input is a seed of the target mutated by ``openhnv.testing.fuzz.mutate`` under a
hypothesis-drawn random, or plain random bytes; the target raises on any broken
invariant (docs/testing.md). ``HNV_FUZZ_EXAMPLES`` raises the count for a longer run.
"""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openhnv.testing.fuzz import Target
from openhnv.testing.fuzz.mutate import mutations
from openhnv.testing.fuzz.registry import TARGETS

EXAMPLES = int(os.environ.get("HNV_FUZZ_EXAMPLES", "1000"))


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_target_keeps_its_invariants(target: Target) -> None:
    seeds = target.seeds()
    assert seeds, f"{target.name} has no seeds"
    for seed in seeds[:50]:
        target.one(seed)  # valid inputs pass

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.randoms(use_true_random=False) | st.binary(max_size=256))
    def mutated(source: random.Random | bytes) -> None:
        if isinstance(source, bytes):
            target.one(source)
        else:
            target.one(next(mutations(seeds, source)))

    mutated()
