"""The VM ports' ``Physical_Port`` rows: how the controller learns where a NIC is attached.

The switch reports VM ports as they come (with the MAC the VM uses) and go; the agent
writes their rows (docs/southbound.md "Ownership"). ``port_row_changes`` is the pure
part: the ports reported and the rows there are in, the writes out. A port whose
outbound reservation the switch scaled down (its uplink is oversubscribed, vswitch.htb)
carries that in its row's ``status`` (``reservation_row_changes``), so the controller
shows it on the NIC. The team members' rows are ``agent.team_rows``'s.
"""

from __future__ import annotations

from collections.abc import Mapping

from openhnv.ovsdb.keys import (
    QOS_GRANTED_STATUS,
    QOS_RESERVED_STATUS,
    QOS_UPLINK_STATUS,
    controller_bound,
)
from openhnv.ovsdb.rows import Atom, Row, RowChange

PORT_TABLE = "Physical_Port"
RESERVATION_KEYS = (QOS_RESERVED_STATUS, QOS_GRANTED_STATUS, QOS_UPLINK_STATUS)

Scaled = Mapping[str, Mapping[str, str]]  # port -> its reservation status keys


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
            # The reservation's keys stay (reservation_row_changes writes them).
            wanted: dict[Atom, Atom] = {k: v for k, v in status.items() if k in RESERVATION_KEYS}
            wanted |= {"attached": "true", "reported_mac": mac}
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


def scaled_reservations(qos: Mapping[str, object]) -> dict[str, dict[str, str]]:
    """The ports whose reservation the switch scaled down, from ``qos_status()``: their
    status keys (Mbit/s reserved and granted, the uplink)."""
    ports = qos.get("ports")
    out: dict[str, dict[str, str]] = {}
    if not isinstance(ports, Mapping):
        return out
    for port, found in ports.items():
        if not isinstance(found, Mapping) or "warning" not in found:
            continue
        granted = found.get("rate_mbps")
        if not isinstance(granted, float | int):
            continue
        out[str(port)] = {
            QOS_RESERVED_STATUS: f"{found.get('reserved_mbps')}",
            QOS_GRANTED_STATUS: f"{granted:g}",
            QOS_UPLINK_STATUS: str(found.get("uplink")),
        }
    return out


def reservation_row_changes(scaled: Scaled, rows: Mapping[str, Row]) -> list[RowChange]:
    """The updates that make each attached VM port's row carry its scaled reservation
    (``scaled``) and no other: the keys come while scaled and go when granted in full."""
    writes: list[RowChange] = []
    for port, row in sorted(rows.items()):
        old = row.get("status")
        if not isinstance(old, Mapping) or old.get("attached") != "true":
            continue
        status: dict[Atom, Atom] = {k: v for k, v in old.items() if k not in RESERVATION_KEYS}
        for k, v in scaled.get(port, {}).items():
            status[k] = v
        if status != dict(old):
            writes.append(RowChange("update", PORT_TABLE, port, {"status": status}))
    return writes
