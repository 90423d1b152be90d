"""A small datacenter created through the northbound API, one ``PUT`` per resource.

The publisher's tests (in-process ``ControllerService`` or a real ``hnv controller``)
and the convergence benchmark create the same shapes: the PA logical network with one
subnet 192.168.0.0/16 and a MAC pool (``fabric``), servers managed at a given OVSDB
address (``server``), one-subnet virtual networks (``vnet``) and NICs placed on a
server (``nic``, a MAC from the pool). Every body comes from the lab's builder
(``openhnv.lab.documents``); ``put`` sends one to whichever controller is at hand.
"""

from __future__ import annotations

from typing import Any, Protocol

from openhnv.controller.northbound.service import ControllerService
from openhnv.lab import documents as nb
from openhnv.lab.documents import Document, Resource

PA_PREFIX = "192.168.0.0/16"
PA_GATEWAY = "192.168.0.1"
PA_POOL = ("192.168.1.1", "192.168.250.250")
PA_SUBNET = "pa"
PA_NIC = "pnic1"
MAC_POOL = "default"
MAC_POOL_RANGE = ("00-1D-D8-07-00-00", "00-1D-D8-07-FF-FF")
VIRTUAL_SUBNET = "s1"


class Northbound(Protocol):
    """A client that PUTs a builder's resource and returns the controller's document
    (``lab.rest.ControllerClient``, ``testing.processes.ControllerProcess``)."""

    def put(self, resource: Resource) -> Document: ...


Controller = ControllerService | Northbound


def put(controller: Controller, resource: Resource) -> Document:
    """Create or replace ``resource``; the document the controller answers with."""
    if isinstance(controller, ControllerService):
        return controller.put(resource.path, resource.body)[1]
    return controller.put(resource)


def fabric_resources() -> list[Resource]:
    pool = nb.ip_pool("pool", *PA_POOL)
    subnet = nb.pa_subnet(PA_SUBNET, PA_PREFIX, gateway=PA_GATEWAY, pools=[pool])
    return [nb.provider_network([subnet]), nb.mac_pool(MAC_POOL, *MAC_POOL_RANGE)]


def fabric(controller: Controller) -> None:
    """The PA logical network and a MAC pool."""
    for resource in fabric_resources():
        put(controller, resource)


def server_resource(name: str, address: str, pa: bool = True) -> Resource:
    """A server managed at OVSDB ``address``; with a pNIC on the PA subnet when ``pa``."""
    return nb.server(name, [address], [(PA_NIC, PA_SUBNET)] if pa else [])


def server(controller: Controller, name: str, address: str, pa: bool = True) -> Document:
    return put(controller, server_resource(name, address, pa))


def vnet_resource(name: str, prefix: str, vsid: int) -> Resource:
    """A virtual network of one subnet (``s1``) covering its whole address space."""
    return nb.virtual_network(
        name, [prefix], [nb.virtual_subnet(VIRTUAL_SUBNET, prefix, vsid=vsid)]
    )


def vnet(controller: Controller, name: str, prefix: str, vsid: int) -> Document:
    return put(controller, vnet_resource(name, prefix, vsid))


def nic_resource(name: str, vnet_name: str, ip: str, host: str | None) -> Resource:
    """A NIC in ``vnet_name``'s subnet at ``ip``, on server ``host`` (None: unplaced)."""
    config = nb.ip_configuration(ip, vnet_name, VIRTUAL_SUBNET)
    return nb.network_interface(name, [config], server_name=host)


def nic(controller: Controller, name: str, vnet_name: str, ip: str, host: str | None) -> Document:
    return put(controller, nic_resource(name, vnet_name, ip, host))


def provisioning(service: ControllerService, ref: str) -> str:
    return str(service.get(ref)["properties"]["provisioningState"])


def configuration(service: ControllerService, ref: str) -> dict[str, Any]:
    state: dict[str, Any] = service.get(ref)["properties"].get("configurationState", {})
    return state


def code_of(service: ControllerService, ref: str) -> str:
    """The code of the first ``configurationState.detailedInfo`` entry, or ""."""
    info = configuration(service, ref).get("detailedInfo") or [{}]
    return str(info[0].get("code", ""))


def mac_text(document: Document) -> str:
    """A NIC document's MAC as the kernel writes it: ``00:1d:d8:07:00:01``."""
    raw = str(document["properties"]["privateMacAddress"]).replace("-", "").lower()
    return ":".join(raw[i : i + 2] for i in range(0, len(raw), 2))
