"""What the controller writes into a host's OVSDB for a northbound snapshot.

``host_rows`` is the compiler's output for one host as mutable rows (for a test to
edit before it writes them); ``port_of`` finds a NIC's ``Physical_Port`` key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openhnv.controller.compiler.compile import compile_host
from openhnv.ovsdb.rows import Row

HostRows = dict[str, dict[str, dict[str, Any]]]  # table -> key -> row, mutable
ROUTER_MAC = "40:1d:d8:b7:1c:06"  # the distributed router's MAC as the rows spell it


def host_rows(snapshot: Mapping[str, list[Any]], host: str = "host1") -> HostRows:
    """The rows the controller would write into ``host``'s OVSDB (mutable copies)."""
    return {
        t: {k: dict(r) for k, r in rows.items()} for t, rows in compile_host(snapshot, host).items()
    }


def port_of(rows: Mapping[str, Mapping[str, Row]], nic_resource: str) -> str:
    """The Physical_Port key (NIC instanceId) of ``/networkInterfaces/<nic_resource>``."""
    for key, row in rows["Physical_Port"].items():
        if row["description"] == nic_resource:
            return key
    raise KeyError(nic_resource)
