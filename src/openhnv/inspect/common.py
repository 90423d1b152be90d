"""What ``hnv vfp``, ``hnv host <query>`` and ``hnv trace`` share: options, the call, errors.

``state_options()`` is the argparse parent holding ``--state-dir`` (default
``$HNV_STATE_DIR``) and ``--json``; ``run_query`` asks the host through its control
socket and prints the result (JSON, or the renderer's text), turning every failure into
one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from openhnv.host.control import call, resolve_state_dir
from openhnv.host.errors import ControlError
from openhnv.inspect.tables import render_json

EXIT_FAILURE = 1
EXIT_USAGE = 2

Renderer = Callable[[Any], str]


def state_options(*, suppress: bool = False) -> argparse.ArgumentParser:
    """The shared options; ``suppress`` for a subcommand's copy (keeps the parent's value)."""
    parent = argparse.ArgumentParser(add_help=False)
    default: Any = argparse.SUPPRESS if suppress else None
    parent.add_argument(
        "--state-dir",
        default=default,
        metavar="DIR",
        help="the host's state directory (default: $HNV_STATE_DIR)",
    )
    parent.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="print JSON instead of a table",
    )
    return parent


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace | int:
    """``parser.parse_args`` that returns the exit status instead of raising ``SystemExit``."""
    try:
        return parser.parse_args(argv)
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else EXIT_USAGE


def run_query(
    prog: str,
    state_dir: str | None,
    as_json: bool,
    op: str,
    params: dict[str, Any],
    render: Renderer,
) -> int:
    """Run ``op`` on the host in ``state_dir`` and print what it answered."""
    try:
        result = call(resolve_state_dir(state_dir), op, **params)
    except ControlError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return EXIT_FAILURE
    print(render_json(result) if as_json else render(result))
    return 0
