"""The chaos tier's figures: each module adds its faults' results; at the end of the run
they are written as one JSON object to ``HNV_CHAOS_JSON`` when it is set (make chaos)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openhnv.testing.chaos import suite


@pytest.fixture(scope="session")
def chaos_figures() -> Iterator[list[dict[str, Any]]]:
    figures: list[dict[str, Any]] = []
    yield figures
    report = os.environ.get(suite.REPORT_ENV, "")
    if report:
        document = {"cut_seconds": suite.cut_seconds(), "rounds": suite.rounds(), "faults": figures}
        Path(report).write_text(json.dumps(document, indent=2) + "\n")
