"""The southbound schemas shipped in the package: where they are and what they hold.

``ms_vtep`` is our variant of the Open vSwitch hardware_vtep schema (it can say NVGRE);
``ms_firewall`` holds the per-NIC ACL rules. docs/southbound.md describes every column.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

from openhnv.ovsdb.errors import OvsdbError

MS_VTEP = "ms_vtep"
MS_FIREWALL = "ms_firewall"
DATABASES: tuple[str, ...] = (MS_VTEP, MS_FIREWALL)


def schema_path(name: str) -> Path:
    """The ``.ovsschema`` file of database ``name`` (``ms_vtep`` or ``ms_firewall``)."""
    if name not in DATABASES:
        raise OvsdbError(f"unknown database {name!r}: expected one of {', '.join(DATABASES)}")
    resource = resources.files("openhnv.ovsdb") / "schemas" / f"{name}.ovsschema"
    path = Path(str(resource))
    if not path.is_file():
        raise OvsdbError(f"schema file of {name} is missing from the package: {path}")
    return path


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """The parsed JSON schema of database ``name``."""
    with schema_path(name).open(encoding="utf-8") as f:
        schema: dict[str, Any] = json.load(f)
    return schema


@functools.cache
def table_database() -> dict[str, str]:
    """Which database holds each table, e.g. ``{"FW_Rules": "ms_firewall", ...}``."""
    return {table: db for db in DATABASES for table in load_schema(db)["tables"]}
