"""``hnv host <query>``: ask a running host (``pa-ca-mapping``, ``provider-addresses``,
``status``, ``problems``, ``customer-routes``, ``compartments``) through its control
socket, as Get-PACAMapping, Get-ProviderAddress and Get-CustomerRoute do on Windows;
``hnv`` sends every other ``hnv host`` to the daemon.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from openhnv.inspect.common import parse, run_query, state_options
from openhnv.inspect.tables import Column, render_fields, render_table

PROG = "hnv host"

PA_CA_COLUMNS: tuple[Column, ...] = (
    ("ca_ip_address", "CA IP Address"), ("ca_mac_address", "CA MAC Address"),
    ("virtual_subnet_id", "Virtual Subnet ID"), ("pa_ip_address", "PA IP Address"),
    ("encapsulation", "Encap"), ("mapping_type", "Type"), ("rdid", "RDID"),
)  # fmt: skip
PA_COLUMNS: tuple[Column, ...] = (
    ("provider_address", "ProviderAddress"), ("mac_address", "MAC Address"),
    ("subnet_mask", "Subnet Mask"), ("default_gateway", "Default Gateway"), ("vlan", "VLAN"),
    ("interface", "Interface"), ("member", "Team Member"), ("moved", "Moved"),
)  # fmt: skip
ROUTE_COLUMNS: tuple[Column, ...] = (
    ("rdid", "RDID"), ("prefix", "Prefix"), ("next_hop", "Next Hop"), ("type", "Type"),
)  # fmt: skip
PROBLEM_COLUMNS: tuple[Column, ...] = (
    ("table", "Table"), ("key", "Key"), ("uuid", "UUID"), ("reason", "Reason"),
)  # fmt: skip

QUERIES: dict[str, tuple[str, Callable[[Any], str]]] = {
    "pa-ca-mapping": ("CA -> PA mappings of the host (Get-PACAMapping)",
                      lambda rows: render_table(rows, PA_CA_COLUMNS)),
    "provider-addresses": ("the host's PAs (Get-ProviderAddress)",
                           lambda rows: render_table(rows, PA_COLUMNS)),
    "status": ("the host process, ovsdb-server and agent state", render_fields),
    "problems": ("OVSDB rows the agent skipped, and why",
                 lambda rows: render_table(rows, PROBLEM_COLUMNS)),
    "customer-routes": ("each routing domain's routes to its gateway (Get-CustomerRoute)",
                        lambda rows: render_table(rows, ROUTE_COLUMNS)),
    "compartments": ("a gateway host's tenant compartments, legs, daemons", render_fields),
}  # fmt: skip


def query_main(command: str, argv: Sequence[str]) -> int:
    """``hnv host <query> [--state-dir DIR] [--json]``."""
    summary, render = QUERIES[command]
    parser = argparse.ArgumentParser(
        prog=f"{PROG} {command}", description=summary, parents=[state_options()]
    )
    if command == "pa-ca-mapping":
        parser.add_argument("--ca", metavar="IP", help="only this customer address")
        parser.add_argument("--pa", metavar="IP", help="only mappings to this provider address")
        parser.add_argument("--vsid", type=int, metavar="N", help="only this virtual subnet")
    args = parse(parser, argv)
    if isinstance(args, int):
        return args
    params = {k: getattr(args, k, None) for k in ("ca", "pa", "vsid")}
    params = {k: v for k, v in params.items() if v is not None}
    return run_query(f"{PROG} {command}", args.state_dir, args.json, command, params, render)


def main(argv: Sequence[str]) -> int:
    """``hnv host <query> ...``; ``argv[0]`` is one of ``QUERIES``."""
    return query_main(argv[0], argv[1:])
