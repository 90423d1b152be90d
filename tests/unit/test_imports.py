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


def test_layers_import_downwards_only() -> None:
    """DESIGN.md §3: each layer imports only layers listed before it."""
    order = ["packet", "vfp", "vswitch", "ovsdb", "agent", "controller", "api", "lab"]
    for name in MODULES:
        parts = name.split(".")
        if len(parts) < 2 or parts[1] not in order:
            continue
        mod = importlib.import_module(name)
        layer = order.index(parts[1])
        with open(mod.__file__ or "", encoding="utf-8") as f:
            source = f.read()
        for later in order[layer + 1 :]:
            assert f"openhnv.{later}" not in source, f"{name} imports the later layer {later}"
