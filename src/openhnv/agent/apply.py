"""Planned units onto the switch: all in one call, and unit by unit when it refuses.

``apply_units(switch, units)`` is the agent's one write to the engine (the planner's
``Unit``: the commands of one row). Every command is idempotent, so a batch the switch
refuses is applied again unit by unit, and only the refused units are blamed (their rows
become problems, the others are programmed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from openhnv.agent.planner import Unit
from openhnv.agent.port_rows import PORT_TABLE
from openhnv.vfp.commands import RemovePort
from openhnv.vfp.errors import PolicyError
from openhnv.vswitch.switch import HostSwitch


def apply_units(switch: HostSwitch, units: Sequence[Unit]) -> list[tuple[Unit, str]]:
    """Apply ``units`` in one call; when the switch refuses, unit by unit (every command
    is idempotent). Returns the refused units with the reason; a refused port is removed
    entirely so that nothing half-programmed stays."""
    if not units:
        return []
    try:
        switch.apply([cmd for unit in units for cmd in unit.commands])
        return []
    except PolicyError:
        pass
    refused: list[tuple[Unit, str]] = []
    for unit in units:
        try:
            switch.apply(unit.commands)
        except PolicyError as err:
            refused.append((unit, f"refused by the switch: {err}"))
            if unit.table == PORT_TABLE:
                with contextlib.suppress(PolicyError):
                    switch.apply([RemovePort(unit.key, missing_ok=True)])
    return refused
