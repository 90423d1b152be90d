"""The host's team members as ``Physical_Port`` rows: how the controller learns of failover.

In the VTEP schema a ``Physical_Port`` is a port of the physical switch; a Hyper-V host's
physical ports are its team members (uplinks). Beside the VM ports' rows (named by NIC
instanceId), the agent writes one row per team member, named by its interface (``up0``),
with ``status``:

- ``team_member``: ``true`` (what tells these rows from the VM ports' rows);
- ``carrier``: ``up`` or ``down``;
- ``provider_addresses``: the PAs the member carries now, comma-separated (a PA that
  moved here from a member without carrier included);
- ``moved_provider_addresses``: those of them whose home is another member.

The controller never binds these rows (no NIC has such an instanceId, and they never
say ``attached``), so its resync leaves them alone. ``team_row_changes`` is the pure
part: the switch's ``team_status()`` and the rows there are in, the writes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openhnv.ovsdb.rows import Atom, Row, RowChange

PORT_TABLE = "Physical_Port"
TEAM_MEMBER = "team_member"


def is_team_row(row: Mapping[str, object]) -> bool:
    """A team member's row (``status:team_member=true``), not a VM port's."""
    status = row.get("status")
    return isinstance(status, Mapping) and status.get(TEAM_MEMBER) == "true"


def team_row_status(member: str, status: Mapping[str, Any]) -> dict[Atom, Atom]:
    """The ``status`` column of ``member``'s row, from ``HostSwitch.team_status()``."""
    placed = status.get("provider_addresses", {})
    here = sorted(a for a, p in placed.items() if p["member"] == member)
    moved = [a for a in here if placed[a]["moved"]]
    return {
        TEAM_MEMBER: "true",
        "carrier": str(status.get("members", {}).get(member, "up")),
        "provider_addresses": ",".join(here),
        "moved_provider_addresses": ",".join(moved),
    }


def team_row_changes(status: Mapping[str, Any], rows: Mapping[str, Row]) -> list[RowChange]:
    """The writes that make the team rows say ``status`` (rows of members gone deleted)."""
    members = status.get("members", {})
    writes: list[RowChange] = []
    for member in members:
        wanted = team_row_status(member, status)
        row = rows.get(member)
        if row is None or row.get("status") != wanted:
            writes.append(
                RowChange("insert", PORT_TABLE, member, {"name": member, "status": wanted})
            )
    for name, row in sorted(rows.items()):
        if name not in members and is_team_row(row):
            writes.append(RowChange("delete", PORT_TABLE, name, {}))
    return writes
