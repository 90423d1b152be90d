"""Digests of compiled rows: canonical (the same rows, the same digest, in any process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import openhnv
from openhnv.controller.compiler.digest import piece_digest, state_digest
from openhnv.ovsdb.rows import Ref

SRC = str(Path(openhnv.__file__).resolve().parents[1])
PIECE: dict[str, dict[str, dict[str, Any]]] = {
    "Ucast_Macs_Remote": {
        "5001/00:1d:d8:07:00:01/10.1.1.11": {
            "MAC": "00:1d:d8:07:00:01",
            "logical_switch": Ref("Logical_Switch", "5001"),
            "locator": Ref("Physical_Locator", "vxlan_over_ipv4:192.168.1.10"),
        }
    },
    "FW_Rules": {
        "r1": {"protocols": frozenset({"tcp", "udp", "icmp"}), "priority": 100, "enabled": True},
    },
    "Physical_Port": {"nic": {"vlan_bindings": {0: Ref("Logical_Switch", "5001")}}},
}
SCRIPT = (
    "from openhnv.controller.compiler.digest import piece_digest\n"
    "from openhnv.ovsdb.rows import Ref\n"
    "print(piece_digest({'FW_Rules': {'r1': {'protocols': frozenset({'tcp', 'udp', 'icmp'}),"
    " 'priority': 100, 'enabled': True}}, 'Physical_Port': {'nic': {'vlan_bindings':"
    " {0: Ref('Logical_Switch', '5001')}}}, 'Ucast_Macs_Remote':"
    " {'5001/00:1d:d8:07:00:01/10.1.1.11': {'MAC': '00:1d:d8:07:00:01', 'logical_switch':"
    " Ref('Logical_Switch', '5001'), 'locator':"
    " Ref('Physical_Locator', 'vxlan_over_ipv4:192.168.1.10')}}}))\n"
)


def test_the_same_rows_give_the_same_digest_in_every_process() -> None:
    mine = piece_digest(PIECE)
    for seed in ("1", "2"):  # string hashing, hence set order, differs per seed
        env = {**os.environ, "PYTHONPATH": SRC, "PYTHONHASHSEED": seed}
        other = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, check=True, capture_output=True, text=True
        )
        assert other.stdout.strip() == mine


def test_any_change_moves_the_digest() -> None:
    base = piece_digest(PIECE)
    changed = {**PIECE, "FW_Rules": {"r1": {**PIECE["FW_Rules"]["r1"], "priority": 101}}}
    renamed = {**PIECE, "FW_Rules": {"r2": PIECE["FW_Rules"]["r1"]}}
    other_ref = {
        **PIECE,
        "Physical_Port": {"nic": {"vlan_bindings": {0: Ref("Logical_Switch", "5002")}}},
    }
    digests = {base, piece_digest(changed), piece_digest(renamed), piece_digest(other_ref)}
    assert len(digests) == 4
    assert state_digest([("vnet:a", base), ("host", "x")]) != state_digest(
        [("host", "x"), ("vnet:a", base)]  # merge order matters: later pieces win
    )
