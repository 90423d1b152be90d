"""An ``ovsdb-server`` standing in for a host: the southbound peer of the controller.

``HostDatabase`` is a real ``OvsdbServer`` with the host's databases in a short temp
dir of its own (a unix socket path must stay under 108 bytes), serving
``unix:<dir>/db.sock``; ``report_port`` writes the ``Physical_Port`` row a host agent
would when a VM port appears, so the publisher can be tested without an agent.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from openhnv.ovsdb.client import OvsdbClient
from openhnv.ovsdb.rows import Atom, Row, RowChange
from openhnv.ovsdb.server import OvsdbServer, SslFiles
from openhnv.testing.polling import WAIT

PORT_TABLE = "Physical_Port"


class HostDatabase:
    """A host's ovsdb-server in its own temp dir (``hnv-db-<name>-...``)."""

    def __init__(
        self, name: str, remotes: list[str] | None = None, ssl: SslFiles | None = None
    ) -> None:
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"hnv-db-{name}-"))
        self.server = OvsdbServer(self.dir, remotes=remotes or [], ssl=ssl)

    @property
    def remote(self) -> str:
        return self.server.unix_remote

    def start(self) -> HostDatabase:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def wipe(self) -> None:
        """Stop and forget every row (a host reinstalled)."""
        self.server.stop()
        for db in self.dir.glob("*.db"):
            db.unlink()

    def remove(self) -> None:
        self.server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @contextmanager
    def client(self) -> Iterator[OvsdbClient]:
        """A synced client of this database (closed on exit)."""
        with OvsdbClient(self.remote) as client:
            client.wait_synced(WAIT)
            yield client

    def rows(self, table: str) -> dict[str, Any]:
        """``table`` as key -> row (a fresh connection each call)."""
        with self.client() as client:
            return dict(client.snapshot([table])[table])

    def report_port(
        self, instance_id: str, attached: bool = True, status: Mapping[str, str] | None = None
    ) -> None:
        """What a host agent writes when a VM port appears (or goes); ``status``: more of
        its status keys (a scaled reservation's)."""
        said: dict[Atom, Atom] = {"attached": "true" if attached else "false"}
        said.update(status or {})
        row: Row = {"name": instance_id, "status": said}
        with self.client() as client:
            client.apply([RowChange("insert", PORT_TABLE, instance_id, row)])


@contextmanager
def host_databases(*names: str) -> Iterator[dict[str, HostDatabase]]:
    """A started ``HostDatabase`` per name; all removed on exit."""
    made: dict[str, HostDatabase] = {}
    try:
        for name in names:
            made[name] = HostDatabase(name).start()
        yield made
    finally:
        for host in made.values():
            host.remove()
