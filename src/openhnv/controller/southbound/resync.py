"""What a host link sends, and why it cannot: pure functions of rows and errors.

- ``resync_changes``: the changes that make a host's actual rows its desired state,
  leaving the host agent's own rows and columns alone;
- ``with_digest``: a desired state whose ``Global`` row also names the digest of the
  state (``other_config:openhnv-digest``), so that a restarted controller or a new
  leader can tell from one small read that a host is up to date;
- ``explain_failure``: why a remote gives no OVSDB session, as one sentence for the
  server's ``configurationState``.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping

from openhnv.controller.compiler.host_rows import TABLES
from openhnv.controller.southbound.status import Remote
from openhnv.ovsdb.aio import ConnectionLost
from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.keys import controller_bound
from openhnv.ovsdb.rows import DesiredState, Row, RowChange, diff

PORT_TABLE = "Physical_Port"
GLOBAL_TABLE, GLOBAL_KEY = "Global", "global"
DIGEST_KEY = "openhnv-digest"  # Global.other_config: the digest of the committed state


class NotOvsdb(OvsdbError):
    """The remote accepted a connection but does not serve the host's databases."""


def resync_changes(actual: DesiredState, desired: DesiredState) -> list[RowChange]:
    """The changes that make a host holding ``actual`` hold ``desired`` (every table).

    Rows match by key; only the columns a desired row names are compared, so columns
    another writer owns survive. Rows absent from ``desired`` are deleted, except the
    host agent's unbound ``Physical_Port`` rows.
    """
    projected: dict[str, dict[str, Row]] = {}
    target: dict[str, dict[str, Row]] = {}
    for table in TABLES:
        want = desired.get(table, {})
        rows: dict[str, Row] = {}
        for key, row in actual.get(table, {}).items():
            wanted = want.get(key)
            if wanted is not None:
                same = row.keys() == wanted.keys()
                rows[key] = row if same else {c: v for c, v in row.items() if c in wanted}
            elif table == PORT_TABLE and not controller_bound(row):
                continue  # the agent's port, not bound by the controller yet
            else:
                rows[key] = row
        projected[table] = rows
        target[table] = dict(want)
    return diff(projected, target)


def with_digest(state: DesiredState, digest: str | None) -> DesiredState:
    """``state`` whose Global row also names ``digest`` (a new top level: ``state`` is shared)."""
    row = state.get(GLOBAL_TABLE, {}).get(GLOBAL_KEY)
    if digest is None or row is None:
        return state
    config = row.get("other_config", {})
    config = {**config, DIGEST_KEY: digest} if isinstance(config, Mapping) else {DIGEST_KEY: digest}
    return {
        **state,
        GLOBAL_TABLE: {**state[GLOBAL_TABLE], GLOBAL_KEY: {**row, "other_config": config}},
    }


def explain_failure(remote: Remote, err: BaseException) -> str:
    """Why ``remote`` gives no OVSDB session, as one sentence."""
    if remote.kind == "unix" and isinstance(err, FileNotFoundError):
        return f"not connected to {remote}: no socket at {remote.path} (is the host running?)"
    if remote.kind == "ssl" and isinstance(err, ssl.SSLError | ConnectionError | ConnectionLost):
        return (
            f"{remote} accepts TCP connections but no OVSDB session comes up: the SSL "
            "handshake is refused (is the host's certificate from the PKI given to "
            "hnv controller --pki, and does it trust this controller's CA?)"
        )
    if isinstance(err, NotOvsdb | TimeoutError | ConnectionLost):
        return (
            f"{remote} accepts connections but no OVSDB session comes up (is it an "
            "ovsdb-server holding ms_vtep and ms_firewall?)"
        )
    if isinstance(err, OSError):
        reason = os.strerror(err.errno) if err.errno else (err.strerror or type(err).__name__)
        return f"not connected to {remote}: {reason.lower()}"
    return f"not connected to {remote}: {err}"
