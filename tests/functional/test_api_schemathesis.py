"""The published OpenAPI document tells the truth: schemathesis, all phases, every check.

The short form of ``schemathesis_run`` (a few examples per operation, fixed seed) against
a real ``hnv controller`` over TLS with the admin token; 0 failures, no error. The long
form is ``make schemathesis-long``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from schemathesis_run import SHORT_EXAMPLES, run, schemathesis_missing


@pytest.mark.skipif(schemathesis_missing() is not None, reason=str(schemathesis_missing()))
def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    done = run(tmp_path, SHORT_EXAMPLES)
    summary = done.stdout[done.stdout.find("SUMMARY") :]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in summary, summary
    assert " passed" in summary
    assert "failures" not in summary.lower().replace("0 failures", "")
