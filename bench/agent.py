"""How fast a host comes back: a restarted ``hnv host`` reprogramming N mappings from OVSDB.

Starts a real ``python3 -m openhnv host --driver none`` in a temp dir, writes the
compiler's rows for one VNet of N NICs (a few local, the rest on other hosts) into its
OVSDB, waits until the engine holds all N mappings, then stops the host with SIGTERM and
starts it again over the same database files. Prints one JSON object:

- ``ovsdb_apply_s``: commit of the N rows (one ``replace_all``) on the host's ovsdb-server
- ``first_program_s``: from that commit until the engine shows all N mappings
- ``restart_ready_s``: from spawning the restarted process until it prints ``ready``
  (interpreter start, ovsdb-server start, agent sync and programming included)
- ``restart_agent_sync_s``: the part of that spent in ``HostAgent.start`` (rows read and
  programmed), as the host's ``status`` reports it; target ≤ 2 s for 1,000 mappings
- ``restart_ovsdb_server_s``: the part spent starting ovsdb-server
- ``ovsdb_kill_to_resynced_s``: ovsdb-server SIGKILLed under a running host until the
  supervisor restarted it and the agent resynced (supervisor poll 0.2 s, client backoff)

``--smoke`` runs 50 mappings once; ``--mappings`` and ``--trials`` set the size.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from openhnv.controller.compiler.compile import compile_host
from openhnv.host.control import call
from openhnv.ovsdb.client import OvsdbClient
from openhnv.testing.polling import eventually
from openhnv.testing.processes import HostProcess
from openhnv.testing.snapshots import Snapshot, nic, server, snapshot, subnet, vnet

LOCAL_NICS = 10
REMOTE_HOSTS = 9
WAIT = 120.0
POLL = 0.005  # seconds between looks at the host while timing it


def datacenter(n: int) -> Snapshot:
    """One VNet (10.0.0.0/16, VSID 5001) with ``n`` NICs: LOCAL_NICS on host1."""
    servers = [server("host1", [("192.168.1.10", 24, 0, "192.168.1.1")])]
    servers += [
        server(f"host{h}", [(f"192.168.1.{10 + h}", 24, 0, "192.168.1.1")])
        for h in range(2, REMOTE_HOSTS + 2)
    ]
    nics = []
    for i in range(n):
        host = "host1" if i < LOCAL_NICS else f"host{2 + i % REMOTE_HOSTS}"
        mac = f"001DD8{(i >> 16) & 0xFF:02X}{(i >> 8) & 0xFF:02X}{i & 0xFF:02X}"
        ip = f"10.0.{(i + 2) >> 8}.{(i + 2) & 0xFF}"
        nics.append(nic(f"nic{i}", mac, [(ip, "Bench/Subnet1")], host))
    vnets = [vnet("Bench", ["10.0.0.0/16"], [subnet("Subnet1", "10.0.0.0/16", 5001)])]
    return snapshot(servers=servers, vnets=vnets, nics=nics)


def spawn(state_dir: Path) -> HostProcess:
    """Start a host (``ready_seconds``: until it printed ``ready``)."""
    host = HostProcess(state_dir, "--log-level", "WARNING", timeout=WAIT)
    if not host.ready:
        host.close()
        raise SystemExit(f"bench: host did not start: {host.stderr()}")
    return host


def wait_mappings(state_dir: Path, n: int) -> None:
    eventually(
        lambda: len(call(state_dir, "pa-ca-mapping")) >= n,
        f"the host programming {n} mappings",
        WAIT,
        POLL,
    )


def ovsdb_recovery(state_dir: Path, rows: int) -> float:
    """SIGKILL the host's ovsdb-server; seconds until the agent is synced with a new one."""
    host = spawn(state_dir)
    try:
        before = call(state_dir, "status")
        syncs = before["agent"]["syncs"]
        os.kill(before["ovsdb_server"]["pid"], signal.SIGKILL)
        began = time.perf_counter()

        def resynced() -> bool:
            now = call(state_dir, "status")
            agent = now["agent"]
            return bool(
                now["ovsdb_server"]["restarts"] and agent["connected"] and agent["syncs"] > syncs
            )

        eventually(resynced, "the agent resynced after ovsdb-server was killed", WAIT, POLL)
        took = time.perf_counter() - began
        if len(call(state_dir, "pa-ca-mapping")) != rows:
            raise SystemExit("bench: the resynced agent lost mappings")
        return took
    finally:
        host.close()


def run(n: int, trials: int) -> dict[str, Any]:
    desired = compile_host(datacenter(n), "host1")
    rows = len(desired["Ucast_Macs_Remote"])
    with tempfile.TemporaryDirectory(prefix="hnv-bench-agent-") as tmp:
        state = Path(tmp) / "host1"
        host = spawn(state)
        first_ready = host.ready_seconds
        try:
            with OvsdbClient(f"unix:{state}/ovsdb.sock") as client:
                client.wait_synced(WAIT)
                began = time.perf_counter()
                client.replace_all(desired, timeout=WAIT)
                applied = time.perf_counter()
            wait_mappings(state, rows)
            programmed = time.perf_counter()
        finally:
            host.close()
        recovered = ovsdb_recovery(state, rows)
        ready: list[float] = []
        sync: list[float] = []
        ovsdb: list[float] = []
        for _ in range(trials):
            host = spawn(state)
            try:
                if len(call(state, "pa-ca-mapping")) != rows:
                    raise SystemExit("bench: the restarted host lost mappings")
                startup = call(state, "status")["startup"]
            finally:
                host.close()
            ready.append(host.ready_seconds)
            sync.append(startup["agent_sync_s"])
            ovsdb.append(startup["ovsdb_server_s"])
    return {
        "bench": "agent",
        "mappings": rows,
        "trials": trials,
        "first_ready_s": round(first_ready, 3),
        "ovsdb_apply_s": round(applied - began, 4),
        "first_program_s": round(programmed - applied, 4),
        "restart_ready_s": round(statistics.median(ready), 3),
        "restart_agent_sync_s": round(statistics.median(sync), 4),
        "restart_ovsdb_server_s": round(statistics.median(ovsdb), 4),
        "ovsdb_kill_to_resynced_s": round(recovered, 3),
        "target_restart_agent_sync_s": 2.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="50 mappings, one trial")
    parser.add_argument("--mappings", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args(argv)
    n, trials = (50, 1) if args.smoke else (args.mappings, args.trials)
    print(json.dumps(run(n, trials), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
