"""The ``hnv`` command: one entry point that dispatches to each process's ``main``.

Subcommands live in their own layers; this table only names them, and each is
imported when it is run so that ``hnv vfp`` does not pay for the REST stack. ``hnv host``
runs the daemon, except its queries (``hnv host status`` ...), which are operator
commands of ``openhnv.inspect``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from openhnv import __version__

# subcommand -> (module holding ``main(argv) -> int``, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "controller": ("openhnv.api.server", "run the Network Controller REST service"),
    "demo": ("openhnv.lab.demo", "run the seed's Contoso/Fabrikam datacenter with live traffic"),
    "host": ("openhnv.host.main", "run a host: ovsdb-server, host agent and vSwitch"),
    "lab": ("openhnv.lab.cli", "build, inspect and remove a lab datacenter in network namespaces"),
    "trace": ("openhnv.inspect.trace_cmd", "dry-run a packet through a host's VFP port"),
    "vfp": ("openhnv.inspect.vfp_cmd", "inspect a host's VFP: ports, layers, rules, flows"),
    "pki": ("openhnv.api.pki", "create the CAs, certificates and API tokens (OVSDB/SSL, REST)"),
}

# ``hnv host <query>``: the operator command instead of the daemon
HOST_QUERIES = (
    "pa-ca-mapping",
    "provider-addresses",
    "status",
    "problems",
    "customer-routes",
    "compartments",
)
HOST_QUERY_MODULE = "openhnv.inspect.host_cmd"

USAGE = "usage: hnv [--version] <command> [args...]"


def _help() -> str:
    lines = [USAGE, "", "commands:"]
    for name, (_, summary) in sorted(SUBCOMMANDS.items()):
        lines.append(f"  {name:<12} {summary}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_help())
        return 0 if args else 2
    if args[0] == "--version":
        print(f"hnv {__version__}")
        return 0
    entry = SUBCOMMANDS.get(args[0])
    if entry is None:
        print(f"hnv: unknown command {args[0]!r}\n{_help()}", file=sys.stderr)
        return 2
    name = entry[0]
    if args[0] == "host" and len(args) > 1 and args[1] in HOST_QUERIES:
        name = HOST_QUERY_MODULE
    module = importlib.import_module(name)
    result: int = module.main(args[1:])
    return result
