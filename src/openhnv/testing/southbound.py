"""What the controller writes into a host's OVSDB for a northbound snapshot.

``host_rows`` is the compiler's output for one host as mutable rows (for a test to
edit before it writes them); ``port_of`` finds a NIC's ``Physical_Port`` key;
``sql_arp_request`` is the ARP request figure 8's Contoso SQL VM sends into such a host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openhnv.controller.compiler.compile import compile_host
from openhnv.ovsdb.rows import Row
from openhnv.packet.arp import ARP_REQUEST
from openhnv.packet.frames import arp_frame

HostRows = dict[str, dict[str, dict[str, Any]]]  # table -> key -> row, mutable
ROUTER_MAC = "40:1d:d8:b7:1c:06"  # the distributed router's MAC as the rows spell it
SQL_MAC, SQL_ADDRESS = "00:1d:d8:07:00:11", "10.1.1.11"  # figure 8's Contoso SQL, VSID 5001
BROADCAST_MAC, UNKNOWN_MAC = "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00"


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


def sql_arp_request(target: str) -> bytes:
    """Contoso SQL's broadcast ARP request for ``target`` (a CA of its VSID, the router)."""
    return arp_frame(
        op=ARP_REQUEST,
        src_mac=SQL_MAC,
        dst_mac=BROADCAST_MAC,
        sender_mac=SQL_MAC,
        sender_ip=SQL_ADDRESS,
        target_mac=UNKNOWN_MAC,
        target_ip=target,
    )
