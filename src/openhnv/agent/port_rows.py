"""The VM ports' ``Physical_Port`` rows: how the controller learns where a NIC is attached.

The switch reports VM ports as they come (with the MAC the VM uses) and go; the agent
writes their rows (docs/southbound.md "Ownership"). ``port_row_changes`` is the pure
part: the ports reported and the rows there are in, the writes out. The team members'
rows are ``agent.team_rows``'s.
"""

from __future__ import annotations

from collections.abc import Mapping

from openhnv.ovsdb.keys import controller_bound
from openhnv.ovsdb.rows import Atom, Row, RowChange

PORT_TABLE = "Physical_Port"


def port_row_changes(ports: Mapping[str, str | None], rows: Mapping[str, Row]) -> list[RowChange]:
    """The Physical_Port writes for VM ports that came (MAC) or went (None).

    A port that came: its row with ``status`` attached=true and the reported MAC (the
    controller's columns of an existing row are kept). A port that went: a row the
    controller bound (``controller_bound``: a logical switch or an access VLAN) gets
    attached=false; a row it never bound is deleted.
    """
    writes: list[RowChange] = []
    for port, mac in sorted(ports.items()):
        row = rows.get(port)
        old = row.get("status") if row is not None else None
        status: dict[Atom, Atom] = dict(old) if isinstance(old, Mapping) else {}
        if mac is not None:
            wanted: dict[Atom, Atom] = {"attached": "true", "reported_mac": mac}
            if row is None or status != wanted:
                writes.append(
                    RowChange("insert", PORT_TABLE, port, {"name": port, "status": wanted})
                )
        elif row is None:
            continue
        elif controller_bound(row):
            if status.get("attached") != "false":
                status["attached"] = "false"
                writes.append(RowChange("update", PORT_TABLE, port, {"status": status}))
        else:  # never bound by the controller: the row is ours to remove
            writes.append(RowChange("delete", PORT_TABLE, port, {}))
    return writes
