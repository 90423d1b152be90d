"""Southbound rows for the agent's unit tests: the compiler's output for NB snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import nb_snapshots as nb

from openhnv.controller.compiler.compile import compile_host
from openhnv.ovsdb.rows import Row

Snapshot = dict[str, dict[str, dict[str, Any]]]  # mutable rows, for tests to edit
ROUTER_MAC = "40:1d:d8:b7:1c:06"


def host_rows(snapshot: dict[str, list[Any]], host: str = "host1") -> Snapshot:
    """The rows the controller would write into ``host``'s OVSDB (mutable copies)."""
    return {
        t: {k: dict(r) for k, r in rows.items()} for t, rows in compile_host(snapshot, host).items()
    }


def port_of(snapshot: Mapping[str, Mapping[str, Row]], nic_resource: str) -> str:
    """The Physical_Port key (NIC instanceId) of ``/networkInterfaces/<nic_resource>``."""
    for key, row in snapshot["Physical_Port"].items():
        if row["description"] == nic_resource:
            return key
    raise KeyError(nic_resource)


def acl_datacenter(
    *, subnet_acl: bool = True, web_acl: bool = False, sql_acl: bool = False
) -> dict[str, list[Any]]:
    """Contoso 10.1.0.0/16, Subnet1 10.1.1.0/24 (optionally with the subnet ACL), SQL
    (10.1.1.11) and Web (10.1.1.12) both on host1, App (10.1.1.13) on host2.

    Subnet ACL: deny inbound TCP 22, allow inbound TCP 80 from anywhere.
    Web's NIC ACL: deny inbound TCP 80. SQL's NIC ACL: allow inbound TCP 443.
    """
    acls = [
        nb.acl(
            "subnet-acl",
            [
                nb.rule("deny-ssh", "Inbound", "Deny", 100, "TCP", destination_ports="22"),
                nb.rule("allow-web", "Inbound", "Allow", 110, "TCP", destination_ports="80"),
                nb.rule("deny-tls", "Inbound", "Deny", 120, "TCP", destination_ports="443"),
            ],
        ),
        nb.acl(
            "web-acl", [nb.rule("no-http", "Inbound", "Deny", 100, "TCP", destination_ports="80")]
        ),
        nb.acl(
            "sql-acl", [nb.rule("tls", "Inbound", "Allow", 100, "TCP", destination_ports="443")]
        ),
    ]
    subnet = nb.subnet("Subnet1", "10.1.1.0/24", 5001, "subnet-acl" if subnet_acl else None)
    return nb.snapshot(
        servers=[
            nb.server("host1", [nb.HOST1_PA], ["10.0.0.11"]),
            nb.server("host2", [nb.HOST2_PA], ["10.0.0.12"]),
        ],
        vnets=[nb.vnet("Contoso", ["10.1.0.0/16"], [subnet], nb.CONTOSO_RDID)],
        nics=[
            nb.nic(
                "sql",
                "001DD8070011",
                [("10.1.1.11", "Contoso/Subnet1")],
                "host1",
                acl="sql-acl" if sql_acl else None,
            ),
            nb.nic(
                "web",
                "001DD8070012",
                [("10.1.1.12", "Contoso/Subnet1")],
                "host1",
                acl="web-acl" if web_acl else None,
            ),
            nb.nic("app", "001DD8070013", [("10.1.1.13", "Contoso/Subnet1")], "host2"),
        ],
        acls=acls,
        config=nb.configuration(),
    )
