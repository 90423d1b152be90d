"""Every module imports on its own, so no layer leans on an import done elsewhere."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import openhnv

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(openhnv.__path__, prefix="openhnv.")
    if "__main__" not in m.name
)


# The checkout's own src, not whatever copy of openhnv is installed.
SRC = str(Path(openhnv.__file__).resolve().parents[1])


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_alone(module: str) -> None:
    env = {**os.environ, "PYTHONPATH": SRC}
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, env=env)


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    from openhnv.cli import main

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("hnv ")


def test_cli_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    from openhnv.cli import main

    assert main(["no-such-command"]) == 2
    assert "unknown command" in capsys.readouterr().err


LAYERS = [
    "packet",
    "vfp",
    "vswitch",
    "ovsdb",
    "agent",
    "gateway",
    "host",
    "inspect",
    "controller",
    "api",
    "lab",
    "testing",
]
CONTROLLER_PARTS = ["northbound", "compiler", "southbound", "cluster"]


def _source(name: str) -> str:
    mod = importlib.import_module(name)
    with open(mod.__file__ or "", encoding="utf-8") as f:
        return f.read()


def test_layers_import_downwards_only() -> None:
    """DESIGN.md §3 and docs/architecture.md: each layer imports only layers before it."""
    for name in MODULES:
        parts = name.split(".")
        if len(parts) < 2 or parts[1] not in LAYERS:
            continue
        source = _source(name)
        for later in LAYERS[LAYERS.index(parts[1]) + 1 :]:
            assert f"openhnv.{later}" not in source, f"{name} imports the later layer {later}"


def test_controller_parts_import_downwards_only() -> None:
    """Northbound, then the compiler, then southbound; the compiler is a pure function of
    a snapshot and imports neither of the others."""
    for name in MODULES:
        parts = name.split(".")
        if parts[1:2] != ["controller"] or len(parts) < 3 or parts[2] not in CONTROLLER_PARTS:
            continue
        source = _source(name)
        forbidden = CONTROLLER_PARTS[CONTROLLER_PARTS.index(parts[2]) + 1 :]
        if parts[2] == "compiler":
            forbidden = [*forbidden, "northbound"]
        for other in forbidden:
            assert f"openhnv.controller.{other}" not in source, f"{name} imports {other}"


def test_only_the_tests_and_benchmarks_import_the_test_support() -> None:
    """``openhnv.testing`` is the top layer: no product module (the command included)
    leans on it, so the product runs without pytest and without test data."""
    for name in MODULES:
        if name.split(".")[1] == "testing":
            continue
        assert "openhnv.testing" not in _source(name), f"{name} imports openhnv.testing"
