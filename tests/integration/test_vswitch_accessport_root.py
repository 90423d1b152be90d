"""Two access-port relays back to back (VM a -> access -> VLAN 20 trunk -> access -> VM b):
a TCP transfer with TSO on crosses them whole, its GSO frames segmented by the first
relay; the relays' counters say so when they stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tso_transfer import ADDRESSES, transfer

import openhnv
from openhnv.testing.namespaces import End, join, namespaces
from openhnv.testing.polling import eventually
from openhnv.testing.processes import stop_process

pytestmark = pytest.mark.root

VLAN = 20
COUNTERS_LINE = "accessport: counters "


class Relay:
    """``openhnv.lab.vlanport`` between ``trunk`` and ``access`` of ``namespace``."""

    def __init__(self, namespace: str, trunk: str, access: str, run_dir: Path) -> None:
        self.pidfile = run_dir / f"{access}.pid"
        self.log = run_dir / f"{access}.log"
        env = {**os.environ, "PYTHONPATH": str(Path(openhnv.__file__).resolve().parents[1])}
        argv = [sys.executable, "-m", "openhnv.lab.vlanport", "--netns", namespace,
                "--trunk", trunk, "--access", access, "--vlan", str(VLAN),
                "--pidfile", str(self.pidfile)]  # fmt: skip
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(argv, stderr=out, env=env)
        eventually(self.pidfile.exists, f"the relay on {access} is ready")

    def stop(self) -> dict[str, int]:
        """Stop it; the counters it reported."""
        stop_process(self.process)
        lines = self.log.read_text().splitlines()
        found = [line for line in lines if line.startswith(COUNTERS_LINE)]
        assert found, lines
        counted: dict[str, int] = json.loads(found[-1].removeprefix(COUNTERS_LINE))
        return counted


@pytest.fixture
def relays(tmp_path: Path) -> Iterator[tuple[str, str, list[Relay]]]:
    """VM namespaces a and b (TSO on, the veth default) and the relays' namespace r."""
    with namespaces("ap", "a", "r", "b") as (a, r, b):
        join(End(a, "eth0", address=ADDRESSES[0]), End(r, "acc1"))
        join(End(r, "trk1"), End(r, "trk2"))
        join(End(r, "acc2"), End(b, "eth0", address=ADDRESSES[1]))
        started: list[Relay] = []
        try:
            started.append(Relay(r, "trk1", "acc1", tmp_path))
            started.append(Relay(r, "trk2", "acc2", tmp_path))
            yield a, b, started
        finally:
            for relay in started:
                stop_process(relay.process)


def test_a_tso_transfer_crosses_the_relays_its_gso_frames_segmented(
    relays: tuple[str, str, list[Relay]],
) -> None:
    a, b, (first, second) = relays
    transfer(a, b, os.urandom(4 << 20))  # the receiver reads every byte
    entering, leaving = first.stop(), second.stop()
    assert entering["access:rx_gso_frames"] > 0  # a's TSO frames, cut into segments
    assert entering["access:rx_gso_segments"] > entering["access:rx_gso_frames"]
    for counted in (entering, leaving):
        dropped = {
            k: v
            for k, v in counted.items()
            if v and k.endswith(("rx_gso_unsupported", "rx_truncated", "tx_dropped"))
        }
        assert dropped == {}
