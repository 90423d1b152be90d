"""Run the fuzz targets of ``openhnv.testing.fuzz`` for a time budget each.

Each target runs in a child process: coverage-guided with atheris (libFuzzer) when it is
installed, else with the seed mutator of ``openhnv.testing.fuzz.mutate`` (openhnv is
imported late, so that an atheris child imports it instrumented). A crash is
an input that raised anything but the target's domain error, or broke its invariant;
the child saves it under ``--artifacts`` and the run goes on with the next target.

Prints one JSON object: per target the inputs tried, crashes, the child's peak RSS;
totals. Exit status 1 when any target crashed. ``--smoke``: one second per target.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import resource
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

CHECK_EVERY = 256  # inputs between two looks at the clock (builtin engine)
RSS_LIMIT_MB = 2048
_DONE = re.compile(rb"Done (\d+) runs")
_RESULT = "FUZZ-RESULT "


def _atheris_available() -> bool:
    try:
        import atheris  # noqa: F401  (only whether it is there)
    except ImportError:
        return False
    return True


def run_builtin(name: str, seconds: float, artifacts: Path, seed: int) -> dict[str, object]:
    """The mutation loop in this process: every input, every crash saved (first of each
    kind), until ``seconds`` have passed."""
    from openhnv.testing.fuzz.mutate import mutations
    from openhnv.testing.fuzz.registry import by_name

    target = by_name(name)
    rnd = random.Random(seed)
    runs = crashes = 0
    kinds: dict[str, str] = {}
    end = time.monotonic() + seconds
    for data in mutations(target.seeds(), rnd):
        runs += 1
        try:
            target.one(data)
        except Exception as err:  # a crash: anything that escaped the target
            crashes += 1
            where = traceback.extract_tb(err.__traceback__)[-1]
            kind = f"{type(err).__name__} at {Path(where.filename).name}:{where.lineno}"
            if kind not in kinds:
                kinds[kind] = str(_save(artifacts, name, data))
        if runs % CHECK_EVERY == 0 and time.monotonic() >= end:
            break
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return {"runs": runs, "crashes": crashes, "kinds": kinds, "peak_rss_mb": rss}


def _save(artifacts: Path, name: str, data: bytes) -> Path:
    artifacts.mkdir(parents=True, exist_ok=True)
    path = artifacts / f"crash-{name}-{hashlib.sha1(data).hexdigest()[:16]}"
    path.write_bytes(data)
    return path


def run_atheris(name: str, seconds: float, artifacts: Path) -> None:
    """libFuzzer over the target in this process (it exits when done or on a crash)."""
    import atheris

    # coverage of openhnv only (the stubs lack instrument_imports)
    with atheris.instrument_imports(include=["openhnv"]):  # type: ignore[attr-defined]
        from openhnv.testing.fuzz.registry import by_name
    target = by_name(name)
    corpus = artifacts / f"corpus-{name}"  # kept: the next run starts where this one ended
    corpus.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(target.seeds()):
        (corpus / f"seed-{i}").write_bytes(data)
    artifacts.mkdir(parents=True, exist_ok=True)
    args = [sys.argv[0], f"-max_total_time={max(1, round(seconds))}",
            f"-rss_limit_mb={RSS_LIMIT_MB}", f"-artifact_prefix={artifacts}/crash-{name}-",
            "-print_final_stats=1", str(corpus)]  # fmt: skip
    atheris.Setup(args, target.one)
    atheris.Fuzz()


def _child(name: str, seconds: float, engine: str, artifacts: Path) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--child", name, "--seconds", str(seconds),
           "--engine", engine, "--artifacts", str(artifacts)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, check=False, env=os.environ.copy())
    for line in proc.stdout.decode(errors="replace").splitlines():
        if line.startswith(_RESULT):
            result: dict[str, object] = json.loads(line[len(_RESULT) :])
            return result
    done = _DONE.findall(proc.stderr)
    rss = re.findall(rb"rss: (\d+)Mb", proc.stderr)
    crashed = proc.returncode != 0
    out: dict[str, object] = {
        "runs": int(done[-1]) if done else None,
        "crashes": int(crashed),
        "peak_rss_mb": int(rss[-1]) if rss else None,
    }
    if crashed:
        out["log_tail"] = proc.stderr.decode(errors="replace")[-2000:]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="budget per target")
    parser.add_argument("--target", action="append", help="only these (repeatable)")
    parser.add_argument("--engine", choices=("auto", "atheris", "builtin"), default="auto")
    parser.add_argument("--artifacts", type=Path, default=Path("build/fuzz"))
    parser.add_argument("--smoke", action="store_true", help="one second per target")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.seconds = 1.0
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if _atheris_available() else "builtin"
    if args.child:
        if engine == "atheris":
            run_atheris(args.child, args.seconds, args.artifacts)
            return 0
        result = run_builtin(args.child, args.seconds, args.artifacts, seed=1)
        print(_RESULT + json.dumps(result), flush=True)
        return 0
    from openhnv.testing.fuzz.registry import TARGETS, by_name

    names = args.target or [t.name for t in TARGETS]
    for name in names:
        by_name(name)  # an unknown name fails before anything runs
    results = {}
    for name in names:
        print(f"fuzzing {name} for {args.seconds:g} s ({engine})", file=sys.stderr, flush=True)
        results[name] = _child(name, args.seconds, engine, args.artifacts)
    crashes = sum(int(r["crashes"] or 0) for r in results.values())  # type: ignore[call-overload]
    report = {
        "benchmark": "fuzz",
        "smoke": args.smoke,
        "engine": engine,
        "seconds_per_target": args.seconds,
        "targets": results,
        "inputs": sum(int(r["runs"] or 0) for r in results.values()),  # type: ignore[call-overload]
        "crashes": crashes,
    }
    print(json.dumps(report))
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
