"""Live migration: the TCP gap a moving VM sees, and how soon its destination carries it.

Brings examples/migration.yaml up (the mover's NIC ACL denies inbound: its traffic
passes as replies of the connections it opened) and opens one TCP connection from the
mover to the peer that carries 64 bytes every millisecond (``PacedStream``). Then the
mover migrates back and forth between host1 (PA subnet pa1) and host3 (pa2), each move
through ``lab.migration`` (the REST PUT of the NIC's server, the port's connections
carried, the veth moved). Per migration:

- ``gap_ms``: the longest silence at the peer's receiver around the migration (the
  blackout plus TCP's recovery: retransmission of what was lost);
- ``first_packet_ms``: from the REST call to the first packet of the VM that the
  destination host's port counts (its control socket polled every few milliseconds);
- the steps of ``MigrationReport`` (destination programmed, VM switched, source
  released, NIC Succeeded), also from the REST call.

The same connection lives through every migration (it must: a reset ends the run).
Prints one JSON object, medians over the migrations (5; ``--smoke``: 1). Needs root.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import secrets
import statistics
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openhnv.host import control
from openhnv.host.errors import ControlError
from openhnv.lab import migration, orchestrator
from openhnv.lab.topology import load
from openhnv.testing.migration import PacedStream
from openhnv.testing.privileges import root_missing

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "migration.yaml"
PEER = "10.7.1.20"
STREAM_PORT = 7100
HOSTS = ("host3", "host1")  # across PA subnets, there and back
SETTLE_SECONDS = 1.0  # after a migration, before the next (and the end of its gap window)
BEFORE_SECONDS = 0.2  # the gap window opens this long before the REST call
POLL_SECONDS = 0.002


class FirstPacket:
    """Polls the destination's port counters until the VM's first packet there."""

    def __init__(self, state_dir: Path, port: str) -> None:
        self.state_dir, self.port = state_dir, port
        self.seen: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="first-packet", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with control.ControlClient(self.state_dir) as host:
            while not self._stop.is_set():
                try:
                    counters = host.call("counters", port=self.port)
                except ControlError:  # no such port yet
                    counters = {}
                if isinstance(counters, dict) and int(counters.get("packets_out", 0)) > 0:
                    self.seen = time.monotonic()
                    return
                time.sleep(POLL_SECONDS)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


def _one(running: orchestrator.RunningLab, stream: PacedStream, destination: str) -> dict[str, Any]:
    port = str(running.nics["mover"]["instanceId"])
    watch = FirstPacket(running.host_state_dir(destination), port)
    try:
        report = migration.migrate_running(running, "mover", destination)
        deadline = time.monotonic() + SETTLE_SECONDS * 10
        while stream.first_after(time.monotonic() - 0.01) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(SETTLE_SECONDS)
    finally:
        watch.stop()
    if stream.error is not None:
        raise RuntimeError(f"the paced connection broke: {stream.error}")
    put_at = report.put_at
    first = None if watch.seen is None else (watch.seen - put_at) * 1000.0
    return {
        "to": destination,
        "gap_ms": stream.gap_ms(put_at - BEFORE_SECONDS, time.monotonic()),
        "first_packet_ms": first,
        **{k: v for k, v in report.as_dict().items() if k.endswith("_ms")},
        "connections": report.connections,
        "adopted": report.adopted,
    }


def _median(rounds: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rounds if r.get(key) is not None]
    return round(statistics.median(values), 1) if values else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one migration")
    parser.add_argument("--migrations", type=int, default=5)
    parser.add_argument("--fastpath", choices=orchestrator.FASTPATH_MODES, default="auto")
    args = parser.parse_args(argv)
    missing = root_missing()
    if missing is not None:
        print(json.dumps({"skipped": missing}))
        return 0
    count = 1 if args.smoke else args.migrations
    topology = dataclasses.replace(load(EXAMPLE), name=f"b{secrets.token_hex(3)}")
    running = orchestrator.up(topology, fastpath=args.fastpath)
    rounds: list[dict[str, Any]] = []
    try:
        mover, peer = running.vm_namespace("mover"), running.vm_namespace("peer")
        with PacedStream(mover, peer, PEER, STREAM_PORT) as stream:
            time.sleep(SETTLE_SECONDS)
            for i in range(count):
                rounds.append(_one(running, stream, HOSTS[i % len(HOSTS)]))
            received = stream.received
        fastpath = orchestrator.fastpath_of(running.run_dir)
    finally:
        orchestrator.down(topology.name)
    print(json.dumps({
        "benchmark": "migration",
        "topology": "examples/migration.yaml: host1 (pa1) <-> host3 (pa2), inbound-deny ACL",
        "fastpath": fastpath,
        "migrations": len(rounds),
        "stream": "TCP, 64 bytes every 1 ms, one connection through every migration",
        "stream_bytes_received": received,
        "tcp_gap_ms_median": _median(rounds, "gap_ms"),
        "first_packet_ms_median": _median(rounds, "first_packet_ms"),
        "programmed_ms_median": _median(rounds, "programmed_ms"),
        "switched_ms_median": _median(rounds, "switched_ms"),
        "attached_ms_median": _median(rounds, "attached_ms"),
        "succeeded_ms_median": _median(rounds, "succeeded_ms"),
        "rounds": [{k: round(v, 1) if isinstance(v, float) else v for k, v in r.items()}
                   for r in rounds],
    }, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
