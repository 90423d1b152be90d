"""The key of every southbound row, in one place (docs/southbound.md, "Desired state").

Row UUIDs belong to each ovsdb-server, so the controller and the agent name rows by
keys made of their index columns. A key function takes a row whose references are
``Ref(table, key)`` (the desired-state form) and returns the key.

``Physical_Locator_Set`` has no column of its own to name it: its key (``ls:<vsid>``)
comes from the ``Mcast_Macs_Remote`` row that refers to it. Such tables name their
referrer in ``TableKey.referrer`` and their key function reads the referrer's row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.rows import Ref, Row, Value

KeyFn = Callable[[Row], str]

GLOBAL_KEY = "global"
ACCESS_VLAN = "access_vlan"
"""``Physical_Port`` ``other_config`` key of an access port (a NIC on a logical, VLAN,
subnet): the VLAN it is bridged onto; such a port has no ``vlan_bindings``."""
QOS_OUTBOUND_COLUMN = "qos_outbound_max_mbps"
QOS_INBOUND_COLUMN = "qos_inbound_max_mbps"
"""``Physical_Port`` ``other_config`` keys of a NIC's QoS caps in Mbit/s
(``portSettings.qosSettings`` ``outboundMaximumMbps`` / ``inboundMaximumMbps``);
absent: no cap."""
QOS_RESERVED_COLUMN = "qos_outbound_reserved_mbps"
"""``Physical_Port`` ``other_config`` key of a NIC's outbound reservation in Mbit/s
(``outboundReservedValue``, absolute mode); absent: none."""
QOS_RESERVED_STATUS = "qos_reserved_mbps"
QOS_GRANTED_STATUS = "qos_granted_mbps"
QOS_UPLINK_STATUS = "qos_uplink"
"""``Physical_Port`` ``status`` keys (the host agent's) while a VM port's reservation is
scaled down because its uplink is oversubscribed: the Mbit/s reserved, the Mbit/s
granted, the uplink; absent while the reservation is granted in full."""


def controller_bound(row: Row) -> bool:
    """A ``Physical_Port`` row the controller wrote (bound to a logical switch, or an
    access port); the others are the host agent's (a VM port not bound yet)."""
    config = row.get("other_config")
    access = isinstance(config, Mapping) and ACCESS_VLAN in config
    return bool(row.get("vlan_bindings")) or access


@dataclass(frozen=True, slots=True)
class TableKey:
    """How to name the rows of ``table``.

    ``referrer`` is ``(table, column)`` when the key is computed from the row of that
    table whose ``column`` refers to this row; ``key`` then reads the referrer's row.
    """

    table: str
    key: KeyFn
    referrer: tuple[str, str] | None = None


def _column(table: str, row: Row, column: str) -> Value:
    try:
        return row[column]
    except KeyError:
        raise OvsdbError(f"{table} row lacks {column!r}, needed for its key", table=table) from None


def _text(table: str, row: Row, column: str) -> str:
    value = _column(table, row, column)
    if not isinstance(value, str) or not value:
        raise OvsdbError(
            f"{table} row has {column}={value!r}, its key needs a non-empty string",
            table=table,
        )
    return value


def _ref_key(table: str, row: Row, column: str) -> str:
    value = _column(table, row, column)
    if isinstance(value, frozenset) and len(value) == 1:
        (value,) = value
    if not isinstance(value, Ref):
        raise OvsdbError(
            f"{table} row has {column}={value!r}, its key needs a resolved reference",
            table=table,
        )
    return value.key


def by_column(table: str, column: str) -> KeyFn:
    """A key that is the value of one string column, e.g. ``Logical_Switch.name``."""
    return lambda row: _text(table, row, column)


def physical_locator_key(row: Row) -> str:
    """``f"{encapsulation_type}:{dst_ip}"``, e.g. ``vxlan_over_ipv4:192.168.1.10``."""
    table = "Physical_Locator"
    return f"{_text(table, row, 'encapsulation_type')}:{_text(table, row, 'dst_ip')}"


def ucast_macs_remote_key(row: Row) -> str:
    """``f"{vsid}/{mac}/{ipaddr}"`` where the VSID is the logical switch's key."""
    table = "Ucast_Macs_Remote"
    vsid = _ref_key(table, row, "logical_switch")
    return f"{vsid}/{_text(table, row, 'MAC')}/{_text(table, row, 'ipaddr')}"


def mcast_macs_remote_key(row: Row) -> str:
    """``f"{vsid}/{mac}"``, e.g. ``5001/unknown-dst``."""
    table = "Mcast_Macs_Remote"
    return f"{_ref_key(table, row, 'logical_switch')}/{_text(table, row, 'MAC')}"


def locator_set_key(referrer: Row) -> str:
    """``ls:<vsid>``, from the ``Mcast_Macs_Remote`` row that uses the set."""
    return "ls:" + _ref_key("Mcast_Macs_Remote", referrer, "logical_switch")


TABLE_KEYS: Mapping[str, TableKey] = {
    spec.table: spec
    for spec in (
        TableKey("Global", lambda row: GLOBAL_KEY),
        TableKey("Physical_Switch", by_column("Physical_Switch", "name")),
        TableKey("Provider_Address", by_column("Provider_Address", "address")),
        TableKey("Physical_Port", by_column("Physical_Port", "name")),
        TableKey("Logical_Switch", by_column("Logical_Switch", "name")),
        TableKey("Logical_Router", by_column("Logical_Router", "name")),
        TableKey("Physical_Locator", physical_locator_key),
        TableKey("Manager", by_column("Manager", "target")),
        TableKey("FW_Rules", by_column("FW_Rules", "rule_id")),
        TableKey("Gateway_Compartment", by_column("Gateway_Compartment", "name")),
        TableKey("Gateway_Connection", by_column("Gateway_Connection", "name")),
        TableKey("Ucast_Macs_Remote", ucast_macs_remote_key),
        TableKey("Mcast_Macs_Remote", mcast_macs_remote_key),
        TableKey(
            "Physical_Locator_Set",
            locator_set_key,
            referrer=("Mcast_Macs_Remote", "locator_set"),
        ),
    )
}
"""Key of every table of docs/southbound.md, in the order keys can be computed."""


def key_of(table: str, row: Row, keys: Mapping[str, TableKey] = TABLE_KEYS) -> str:
    """The key of a row of ``table`` given in desired-state form.

    For a table keyed by its referrer, ``row`` is the referrer's row.
    """
    spec = keys.get(table)
    if spec is None:
        raise OvsdbError(f"no key function for table {table!r}", table=table)
    return spec.key(row)
