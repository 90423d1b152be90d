"""A small datacenter for the publisher's functional tests: NB bodies and fake hosts.

A fake host is a real ``ovsdb-server`` (``OvsdbServer``) in a short temp dir, serving
``unix:<dir>/db.sock``; ``Agent`` is an ``OvsdbClient`` on it that writes
``Physical_Port`` rows as the host agent would.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from openhnv.controller.northbound.service import ControllerService
from openhnv.ovsdb.client import OvsdbClient
from openhnv.ovsdb.rows import RowChange
from openhnv.ovsdb.server import OvsdbServer, SslFiles

WAIT = 20.0
PA_PREFIX = "192.168.0.0/16"


class FakeHost:
    """A host's ovsdb-server in its own temp dir (short path: unix sockets are < 108)."""

    def __init__(
        self, name: str, remotes: list[str] | None = None, ssl: SslFiles | None = None
    ) -> None:
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"hnv-pub-{name}-"))
        self.server = OvsdbServer(self.dir, remotes=remotes or [], ssl=ssl)

    @property
    def remote(self) -> str:
        return self.server.unix_remote

    def start(self) -> FakeHost:
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
        with OvsdbClient(self.remote) as client:
            client.wait_synced(WAIT)
            yield client


@contextmanager
def hosts(*names: str) -> Iterator[dict[str, FakeHost]]:
    made: dict[str, FakeHost] = {}
    try:
        for name in names:
            made[name] = FakeHost(name).start()
        yield made
    finally:
        for host in made.values():
            host.remove()


def host_rows(host: FakeHost, table: str) -> dict[str, Any]:
    """``table`` of ``host`` as key -> row (a fresh connection each call)."""
    with host.client() as client:
        return dict(client.snapshot([table])[table])


def report_port(host: FakeHost, instance_id: str, attached: bool = True) -> None:
    """What a host agent writes when a VM port appears (or goes)."""
    with host.client() as client:
        status = {"attached": "true" if attached else "false"}
        client.apply(
            [
                RowChange(
                    "insert", "Physical_Port", instance_id, {"name": instance_id, "status": status}
                )
            ]
        )


# -- northbound bodies ---------------------------------------------------------------


def put(service: ControllerService, ref: str, properties: dict[str, Any]) -> dict[str, Any]:
    _, doc = service.put(ref, {"resourceId": ref.rsplit("/", 1)[1], "properties": properties})
    return doc


def fabric(service: ControllerService) -> None:
    """The PA logical network and a MAC pool."""
    put(
        service,
        "/logicalNetworks/HNVPA",
        {
            "networkVirtualizationEnabled": "True",
            "subnets": [
                {
                    "resourceId": "pa",
                    "properties": {
                        "addressPrefix": PA_PREFIX,
                        "vlanID": "0",
                        "defaultGateways": ["192.168.0.1"],
                        "ipPools": [
                            {
                                "resourceId": "pool",
                                "properties": {
                                    "startIpAddress": "192.168.1.1",
                                    "endIpAddress": "192.168.250.250",
                                },
                            }
                        ],
                    },
                }
            ],
        },
    )
    put(
        service,
        "/macPools/default",
        {"startMacAddress": "00-1D-D8-07-00-00", "endMacAddress": "00-1D-D8-07-FF-FF"},
    )


def server(service: ControllerService, name: str, address: str, pa: bool = True) -> None:
    pnics = (
        [
            {
                "resourceId": "pnic1",
                "properties": {
                    "logicalSubnets": [{"resourceRef": "/logicalNetworks/HNVPA/subnets/pa"}]
                },
            }
        ]
        if pa
        else []
    )
    put(
        service,
        f"/servers/{name}",
        {"connections": [{"managementAddresses": [address]}], "networkInterfaces": pnics},
    )


def vnet(service: ControllerService, name: str, prefix: str, vsid: int) -> None:
    put(
        service,
        f"/virtualNetworks/{name}",
        {
            "addressSpace": {"addressPrefixes": [prefix]},
            "logicalNetwork": {"resourceRef": "/logicalNetworks/HNVPA"},
            "subnets": [
                {
                    "resourceId": "s1",
                    "properties": {"addressPrefix": prefix, "virtualSubnetId": vsid},
                }
            ],
        },
    )


def nic(
    service: ControllerService, name: str, vnet_name: str, ip: str, host: str | None
) -> dict[str, Any]:
    props: dict[str, Any] = {
        "ipConfigurations": [
            {
                "resourceId": "ipconfig1",
                "properties": {
                    "privateIPAddress": ip,
                    "privateIPAllocationMethod": "Static",
                    "subnet": {"resourceRef": f"/virtualNetworks/{vnet_name}/subnets/s1"},
                },
            }
        ]
    }
    if host is not None:
        props["server"] = {"resourceRef": f"/servers/{host}"}
    return put(service, f"/networkInterfaces/{name}", props)


def provisioning(service: ControllerService, ref: str) -> str:
    return str(service.get(ref)["properties"]["provisioningState"])


def configuration(service: ControllerService, ref: str) -> dict[str, Any]:
    state: dict[str, Any] = service.get(ref)["properties"].get("configurationState", {})
    return state


def code_of(service: ControllerService, ref: str) -> str:
    info = configuration(service, ref).get("detailedInfo") or [{}]
    return str(info[0].get("code", ""))
