"""When a lab has converged: what the controller says, and what each host's OVSDB holds.

``northbound_problems`` reads the controller: every NIC ``Succeeded`` with a
``configurationState`` of ``Success``, every server ``Success``. ``row_problems``
compiles the northbound snapshot (the GETs) with the real compiler and compares each
host's OVSDB, read directly from its ovsdb-server, with it: every desired row present
with the desired values in the columns the compiler sets, and no other row. A lab has
converged when both lists are empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openhnv.agent.team_rows import is_team_row
from openhnv.controller.compiler.compile import compile_host
from openhnv.controller.compiler.host_rows import TABLES
from openhnv.controller.northbound.snapshot import SNAPSHOT_COLLECTIONS
from openhnv.controller.southbound.resync import DIGEST_KEY, GLOBAL_TABLE
from openhnv.lab.rest import SUCCEEDED, ControllerClient
from openhnv.ovsdb.client import OvsdbClient
from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.rows import Row

SUCCESS = "Success"
SYNC_SECONDS = 5.0
Snapshot = dict[str, list[dict[str, Any]]]


def snapshot(client: ControllerClient) -> Snapshot:
    """The compiler's input as the controller's GETs return it."""
    return {c: client.list(c) for c in SNAPSHOT_COLLECTIONS}


def _status(document: Mapping[str, Any]) -> str:
    state = document.get("properties", {}).get("configurationState") or {}
    return str(state.get("status", "")) if isinstance(state, dict) else ""


def northbound_problems(state: Snapshot) -> list[str]:
    """NICs not ``Succeeded``/``Success`` and servers not ``Success``, by name."""
    problems = []
    for nic in state.get("networkInterfaces", []):
        provisioning = nic.get("properties", {}).get("provisioningState")
        if provisioning != SUCCEEDED or _status(nic) != SUCCESS:
            problems.append(f"NIC {nic.get('resourceId')}: {provisioning}/{_status(nic)}")
    for server in state.get("servers", []):
        if _status(server) != SUCCESS:
            problems.append(f"server {server.get('resourceId')}: {_status(server) or 'no state'}")
    return problems


def compare_rows(
    desired: Mapping[str, Mapping[str, Row]], actual: Mapping[str, Mapping[str, Row]]
) -> list[str]:
    """Differences between a host's desired rows and the rows it holds (pure).

    Only the columns the compiler sets are compared (the agent writes others, such as
    a port's status), and ``Global`` without the publisher's digest; a row the
    compiler does not want is a difference, except a team member's ``Physical_Port``
    row, which the host's agent writes itself (``agent.team_rows``).
    """
    problems = []
    for table in TABLES:
        want = desired.get(table, {})
        have = actual.get(table, {})
        for key in sorted(set(want) - set(have)):
            problems.append(f"{table} {key}: missing")
        for key in sorted(set(have) - set(want)):
            if not is_team_row(have[key]):
                problems.append(f"{table} {key}: not desired")
        for key in sorted(set(want) & set(have)):
            row = _without_digest(have[key]) if table == GLOBAL_TABLE else have[key]
            wrong = sorted(c for c, v in want[key].items() if row.get(c) != v)
            if wrong:
                problems.append(f"{table} {key}: wrong {', '.join(wrong)}")
    return problems


def _without_digest(row: Row) -> Row:
    """A ``Global`` row without the digest the publisher adds to what it compiled."""
    config = row.get("other_config")
    if not isinstance(config, Mapping) or DIGEST_KEY not in config:
        return row
    return {**row, "other_config": {k: v for k, v in config.items() if k != DIGEST_KEY}}


def host_rows(remote: str) -> dict[str, dict[str, Row]]:
    """Every compared table of a host's OVSDB, read over a connection of our own."""
    with OvsdbClient(remote) as client:
        client.wait_synced(SYNC_SECONDS)
        return client.snapshot(TABLES)


def row_problems(state: Snapshot, remotes: Mapping[str, str]) -> list[str]:
    """Every host whose OVSDB differs from the compiled desired state, and how."""
    problems = []
    for host, remote in sorted(remotes.items()):
        try:
            actual = host_rows(remote)
        except OvsdbError as exc:
            problems.append(f"{host}: {exc}")
            continue
        desired = compile_host(state, host)
        problems += [f"{host}: {p}" for p in compare_rows(desired, actual)]
    return problems
