"""schemathesis 4, every phase and ``--checks all``, against a real secure ``hnv controller``.

The controller runs as the lab runs it (HTTPS, client certificates and tokens), holds the
figure 8 datacenter so that reads and writes meet real resources, and schemathesis
authenticates with the admin token (so its ``ignored_auth`` check can see that a request
without it is refused). ``tests/schemathesis.toml`` says why 400 answers schema-valid
data. The short form runs in ``make test`` (``test_api_schemathesis.py``); the long one:

    python3 tests/functional/schemathesis_run.py --long      # make schemathesis-long

Exit status 0 when schemathesis found nothing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from openhnv.lab import daemons
from openhnv.lab.access import ApiAccess
from openhnv.testing.processes import ControllerProcess

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "tests" / "schemathesis.toml"
FIGURE8 = ROOT / "examples" / "figure8"
PHASES = "examples,coverage,fuzzing,stateful"
SHORT_EXAMPLES = 4
LONG_EXAMPLES = 100
SEED = 1


def schemathesis_missing() -> str | None:
    """Why schemathesis cannot run here, or None."""
    return None if shutil.which("schemathesis") else "schemathesis is not installed"


def run(
    directory: Path, max_examples: int, seed: int | None = SEED
) -> subprocess.CompletedProcess[str]:
    """Start the controller in ``directory``, fill it, run schemathesis; its result."""
    access = ApiAccess.create(directory / "pki")
    with ControllerProcess(directory / "nc.db", access=access) as nc, nc.http() as http:
        for file in sorted(FIGURE8.glob("*.json")):
            _, collection, resource_id = file.stem.split("-", 2)
            http.put(f"{nc.base}/{collection}/{resource_id}", content=file.read_bytes())
        argv = [
            "schemathesis", "--config-file", str(CONFIG), "run", f"{nc.url}/openapi.json",
            "--header", f"Authorization: Bearer {access.admin_token}",
            "--tls-verify", str(access.ca),
            "--checks", "all", "--phases", PHASES,
            "--max-examples", str(max_examples),
            "--workers", "1",
        ]  # fmt: skip
        if seed is not None:
            argv += ["--seed", str(seed)]
        return subprocess.run(
            argv, env=daemons.python_env(), capture_output=True, text=True, cwd=directory
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help=f"{LONG_EXAMPLES} examples a case")
    parser.add_argument("--max-examples", type=int, help="examples per operation and phase")
    parser.add_argument("--seed", type=int, help="schemathesis' seed (default: a new one)")
    args = parser.parse_args(argv)
    examples = args.max_examples or (LONG_EXAMPLES if args.long else SHORT_EXAMPLES)
    with tempfile.TemporaryDirectory(prefix="hnv-schemathesis-") as tmp:
        done = run(Path(tmp), examples, args.seed)
    print(done.stdout[-6000:])
    print(done.stderr[-2000:], file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
