"""The customer routes a host's rows ask for: each VNet router's static routes, by RDID.

The controller fills ``Logical_Router.static_routes`` (prefix -> the CA of the tenant's
gateway compartment) for a VNet with a virtual gateway; the engine's route table of the
VNet's routing domain is that and its address space (``vfp.routes``). Pure.
"""

from __future__ import annotations

from openhnv.agent.rows import Catalog, Problem
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.routes import CustomerRoute, RouteTable


def route_tables(cat: Catalog, problems: list[Problem]) -> dict[str, RouteTable]:
    """Each enabled router's static routes (toward its gateway), by RDID; a router
    without routes has no table: off-VNet traffic stays dropped."""
    tables: dict[str, RouteTable] = {}
    for key, router in sorted(cat.routers.items()):
        if not router.enabled or not router.routes:
            continue
        try:
            table = RouteTable(
                router.rdid,
                router.address_space,
                tuple(CustomerRoute(prefix, hop) for prefix, hop in router.routes),
            )
        except PolicyError as err:
            problems.append(Problem("Logical_Router", "", key, str(err)))
            continue
        if router.rdid in tables:
            reason = f"routing domain {router.rdid} already has routes from another router"
            problems.append(Problem("Logical_Router", "", key, reason))
            continue
        tables[router.rdid] = table
    return tables
