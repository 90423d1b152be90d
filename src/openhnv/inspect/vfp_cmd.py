"""``hnv vfp``: a running host's VFP, as ``vfpctrl`` shows it on Windows.

``hnv vfp [--state-dir DIR] [--json] <command> [--port P] [--layer L] [--group G]``;
the host answers through its control socket (``openhnv.host.control``). Tables by
default, the host's JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from openhnv.inspect.common import EXIT_USAGE, parse, run_query, state_options
from openhnv.inspect.tables import Column, render_fields, render_table
from openhnv.vfp.listing import FLOW_STATES

PROG = "hnv vfp"


@dataclass(frozen=True, slots=True)
class Command:
    """One ``hnv vfp`` command: its control op, the options it takes, how to print it."""

    op: str
    help: str
    options: tuple[str, ...]  # subset of port, layer, group, limit, state
    required: tuple[str, ...]
    render: Callable[[Any], str]


def _table(columns: Sequence[Column]) -> Callable[[Any], str]:
    return lambda rows: render_table(rows, columns)


PORT_COLUMNS: tuple[Column, ...] = (
    ("name", "Port"), ("mac", "MAC"), ("vsid", "VSID"), ("rdid", "RDID"),
    ("ip_addresses", "IPs"), ("enabled", "Enabled"), ("attached", "Attached"),
    ("layers", "Layers"), ("flows", "Flows"), ("generation", "Gen"),
)  # fmt: skip
LAYER_COLUMNS: tuple[Column, ...] = (
    ("name", "Layer"), ("priority", "Priority"), ("stateful", "Stateful"),
    ("default_inbound", "Default in"), ("default_outbound", "Default out"), ("groups", "Groups"),
)  # fmt: skip
GROUP_COLUMNS: tuple[Column, ...] = (
    ("name", "Group"), ("direction", "Direction"), ("family", "Family"),
    ("priority", "Priority"), ("rules", "Rules"),
)  # fmt: skip
RULE_COLUMNS: tuple[Column, ...] = (
    ("layer", "Layer"), ("group", "Group"), ("rule_id", "Rule"), ("priority", "Priority"),
    ("action", "Action"), ("matches", "Matches"), ("conditions", "Conditions"),
)  # fmt: skip
SPACE_COLUMNS: tuple[Column, ...] = (("rdid", "RDID"), ("vsids", "VSIDs"), ("mappings", "Mappings"))
MAPPING_COLUMNS: tuple[Column, ...] = (
    ("customer_address", "CA IP"), ("customer_mac", "CA MAC"), ("vsid", "VSID"),
    ("provider_address", "PA"), ("encapsulation", "Encap"), ("local", "Local"), ("rdid", "RDID"),
)  # fmt: skip
FLOW_COLUMNS: tuple[Column, ...] = (
    ("direction", "Dir"), ("flow", "Flow"), ("state", "State"), ("result", "Result"),
    ("generation", "Gen"), ("rules", "Rules"), ("paired", "Paired"), ("offloaded", "Kernel"),
    ("kernel_packets", "K.packets"), ("kernel_bytes", "K.bytes"),
)  # fmt: skip
RULE_COUNTER_COLUMNS: tuple[Column, ...] = (
    ("layer", "Layer"), ("group", "Group"), ("rule_id", "Rule"), ("matches", "Matches"),
)  # fmt: skip

COMMANDS: dict[str, Command] = {
    "list-ports": Command("list-ports", "VM ports of the switch", (), (), _table(PORT_COLUMNS)),
    "list-layers": Command(
        "list-layers", "layers of a port", ("port",), ("port",), _table(LAYER_COLUMNS)
    ),
    "list-groups": Command(
        "list-groups",
        "groups of a port's layer",
        ("port", "layer"),
        ("port", "layer"),
        _table(GROUP_COLUMNS),
    ),
    "list-rules": Command(
        "list-rules",
        "rules of a port (or of one layer and group)",
        ("port", "layer", "group"),
        ("port",),
        _table(RULE_COLUMNS),
    ),
    "list-spaces": Command(
        "list-spaces", "mapping spaces (routing domains)", (), (), _table(SPACE_COLUMNS)
    ),
    "list-mappings": Command(
        "list-mappings",
        "CA -> PA mappings (of a port's RDID with --port)",
        ("port",),
        (),
        _table(MAPPING_COLUMNS),
    ),
    "list-flows": Command(
        "list-flows",
        "unified flows of a port and the state of their connection (syn-sent: never"
        " answered; unopened: a mid-stream packet made it; Kernel: executed by the kernel"
        " fast path, its counts)",
        ("port", "limit", "state"),
        ("port",),
        _table(FLOW_COLUMNS),
    ),
    "counters": Command(
        "counters",
        "counters of a port ('uplink' for the PA side), drops included (kernel_drop:*: by"
        " its socket filter over the abuse limits); with the kernel fast path its packets"
        " for the port and the host's hits and misses (fastpath:*); what its packet ring"
        " received (ring: frames, GSO frames segmented and dropped, drops by reason; for"
        " 'uplink', rings: each uplink's)",
        ("port",),
        ("port",),
        render_fields,
    ),
    "rule-counters": Command(
        "rule-counters",
        "per-rule matches of a port",
        ("port",),
        ("port",),
        _table(RULE_COUNTER_COLUMNS),
    ),
}

OPTION_HELP = {
    "port": "port name (the NIC instanceId), or 'uplink'",
    "layer": "layer name, e.g. ACL_NIC",
    "group": "group name, e.g. out-v4",
    "limit": "at most this many flows",
    "state": f"only flows in these states (comma-separated: {','.join(FLOW_STATES)})",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, parents=[state_options()], description="Inspect a running host's VFP."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, parents=[state_options(suppress=True)])
        for option in cmd.options:
            kind: Any = int if option == "limit" else str
            p.add_argument(
                f"--{option}", type=kind, required=option in cmd.required,
                help=OPTION_HELP[option],
            )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(build_parser(), argv)
    if isinstance(args, int):
        return args
    cmd = COMMANDS[args.command]
    params = {o: getattr(args, o) for o in cmd.options if getattr(args, o) is not None}
    if cmd.op == "list-rules" and ("layer" in params) != ("group" in params):
        print(f"{PROG}: list-rules takes --layer and --group together", file=sys.stderr)
        return EXIT_USAGE
    return run_query(PROG, args.state_dir, args.json, cmd.op, params, cmd.render)
