"""A snapshot of the northbound state: every resource as a GET returns it.

``snapshot(store)`` is the compiler's input (docs/architecture.md, "Compiler input"):
collection name -> list of full GET documents, children inline, allocated and read-only
values included, sorted by resource id; unlike a GET, with the write-only secrets the
hosts need (a gateway connection's pre-shared key).
"""

from __future__ import annotations

from openhnv.controller.northbound.render import Renderer
from openhnv.controller.northbound.state import State
from openhnv.controller.northbound.store import Document, Store

SNAPSHOT_COLLECTIONS: tuple[str, ...] = (
    "logicalNetworks",
    "macPools",
    "credentials",
    "servers",
    "accessControlLists",
    "virtualNetworks",
    "networkInterfaces",
    "virtualNetworkManager",
    "publicIPAddresses",
    "gatewayPools",
    "gateways",
    "virtualGateways",
)


def render_all(state: State, *, copy: bool = True) -> dict[str, list[Document]]:
    """Every collection of ``state`` rendered as GET documents (``copy=False``: sharing
    the stored values, for a reader that never changes them, such as the compiler)."""
    renderer = Renderer(state, secrets=True)
    return {
        name: [renderer.resource(path, copy=copy) for path, _ in state.all(name)]
        for name in SNAPSHOT_COLLECTIONS
    }


def snapshot(store: Store) -> dict[str, list[Document]]:
    """The whole northbound state held by ``store``, as the compiler consumes it."""
    return render_all(State.load(store))
