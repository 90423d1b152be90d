"""OvsdbConnection against a real ovsdb-server: requests, large replies, monitor updates,
a server that goes away, and a peer that stops answering."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openhnv.ovsdb.aio import ConnectionLost, connect
from openhnv.ovsdb.server import OvsdbServer

MANY = 5000  # rows in one reply: far more than one socket read


@pytest.fixture
def short_server() -> Iterator[OvsdbServer]:
    with tempfile.TemporaryDirectory(prefix="hnv-aio-") as tmp:  # unix paths stay < 108
        server = OvsdbServer(Path(tmp) / "h")
        server.start()
        yield server
        server.stop()


def test_calls_large_replies_and_monitor_updates(short_server: OvsdbServer) -> None:
    async def run() -> None:
        updates: list[list[Any]] = []
        connection = await connect(
            short_server.unix_remote, on_update=lambda method, params: updates.append(params)
        )
        try:
            assert await connection.call("list_dbs", []) == ["ms_vtep", "ms_firewall", "_Server"]
            assert await connection.call("echo", ["hi"]) == ["hi"]
            await connection.call("monitor", ["ms_vtep", "m", {"Logical_Switch": {}}])
            inserts = [
                {"op": "insert", "table": "Logical_Switch", "row": {"name": str(n)}}
                for n in range(MANY)
            ]
            await connection.call("transact", ["ms_vtep", *inserts])
            selected = await connection.call(
                "transact", ["ms_vtep", {"op": "select", "table": "Logical_Switch", "where": []}]
            )
            assert len(selected[0]["rows"]) == MANY
            assert connection.received_bytes > len(json.dumps(selected)) > 65536
            await asyncio.sleep(0.2)
            assert sum(len(p[1]["Logical_Switch"]) for p in updates) == MANY
        finally:
            connection.close()

    asyncio.run(run())


def test_a_server_gone_fails_the_pending_call(short_server: OvsdbServer) -> None:
    async def run() -> None:
        connection = await connect(short_server.unix_remote)
        waiting = asyncio.ensure_future(
            connection.call(
                "transact",
                [
                    "ms_vtep",
                    {
                        "op": "wait",
                        "timeout": 60000,
                        "table": "Global",
                        "where": [],
                        "columns": ["switches"],
                        "until": "==",  # never: the table is empty
                        "rows": [{"switches": ["set", []]}],
                    },
                ],
            )
        )
        await asyncio.sleep(0.2)
        await asyncio.get_running_loop().run_in_executor(None, short_server.stop)
        with pytest.raises(ConnectionLost):
            await waiting
        await asyncio.wait_for(connection.closed(), 5)

    asyncio.run(run())


def test_a_peer_that_stops_answering_is_closed_by_the_probe() -> None:
    async def run() -> None:
        with tempfile.TemporaryDirectory(prefix="hnv-aio-") as tmp:
            path = Path(tmp) / "mute.sock"

            async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await reader.read()  # reads, never answers

            server = await asyncio.start_unix_server(mute, str(path))
            try:
                connection = await connect(f"unix:{path}", probe_interval=0.2)
                await asyncio.wait_for(connection.closed(), 5)
                assert not connection.is_open
            finally:
                server.close()

    asyncio.run(run())
