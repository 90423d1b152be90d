"""The gateway role of ``hnv host``: compartments made and kept as the host's OVSDB says.

``CompartmentManager`` follows the host's own ``ovsdb-server`` (the ``Gateway_*`` rows
the controller writes, docs/southbound.md) with a client of its own, and reconciles:
each compartment of the rows is built (``plan.layout`` -> namespace, NIC, legs, routes,
nftables, charon, relays), each compartment no row names any more is torn down, and
what changed is rebuilt part by part (a digest per part is kept in
``<state>/gateway/<name>/applied.json``). It looks again every few seconds, so a dead
charon or relay comes back, as does a compartment whose namespace went.

Stopping the manager (``hnv host`` stopping or restarting) leaves compartments and their
daemons as they are: traffic keeps flowing, and the next manager adopts them (equal
digests, live daemons: nothing to do). ``teardown_all`` removes everything.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openhnv.gateway import daemons, netops
from openhnv.gateway.errors import GatewayError
from openhnv.gateway.plan import MTU, VNET_INTERFACE, Layout, layout
from openhnv.gateway.rows import TABLES, read_compartments
from openhnv.ovsdb.client import ConnectionState
from openhnv.ovsdb.follower import Follower
from openhnv.ovsdb.mirror import RowEvent
from openhnv.ovsdb.schema import MS_VTEP
from openhnv.ovsdb.server import SslFiles

log = logging.getLogger(__name__)

GATEWAY_DIR = "gateway"
APPLIED = "applied.json"
RECHECK_SECONDS = 5.0
PARTS = ("base", "legs", "nft", "ipsec")
SYSCTLS = (
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
)


@dataclass
class _Status:
    compartments: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[dict[str, str]] = field(default_factory=list)
    reconciles: int = 0


class CompartmentManager:
    """Builds and keeps the compartments of the gateway host whose OVSDB is ``remote``."""

    def __init__(
        self, remote: str, state_dir: Path, prefix: str, *, ssl: SslFiles | None = None
    ) -> None:
        self.remote = remote
        self.root = state_dir / GATEWAY_DIR
        self.prefix = prefix
        self._follower: Follower[None] = Follower(
            remote,
            name="hnv-gateway",
            pending=lambda: self._dirty,
            take=self._take,
            work=self._work,
            interval=RECHECK_SECONDS,
            on_batch=self._on_batch,
            on_state=self._on_state,
            databases=(MS_VTEP,),
            ssl=ssl,
        )
        self._cond = self._follower.cond
        self._dirty = True
        self._status = _Status()

    # -- life cycle --------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        """Connect, build what the rows say, then follow them."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._follower.start(lambda _: self.reconcile(), timeout)

    def stop(self) -> None:
        """Stop following the rows; compartments and their daemons stay."""
        self._follower.stop()

    def status(self) -> dict[str, Any]:
        """Each compartment (namespace, legs, daemons, tunnels) and the problems."""
        with self._cond:
            st = self._status
            return {
                "compartments": json.loads(json.dumps(st.compartments)),
                "problems": list(st.problems),
                "reconciles": st.reconciles,
            }

    # -- callbacks (client thread) ---------------------------------------------------------
    def _on_batch(self, events: list[RowEvent]) -> None:
        if any(e.table in TABLES for e in events):
            with self._cond:
                self._dirty = True
                self._cond.notify_all()

    def _on_state(self, state: ConnectionState) -> None:
        if state is ConnectionState.SYNCED:
            with self._cond:
                self._dirty = True
                self._cond.notify_all()

    def _take(self) -> None:
        self._dirty = False  # cond held: the next change asks again

    def _work(self, _: None) -> None:
        try:
            self.reconcile()
        except Exception:  # never let a bug stop the gateway
            log.exception("gateway: reconcile failed; retrying")

    # -- reconciling ---------------------------------------------------------------------
    def reconcile(self) -> None:
        """Make the compartments what the rows say (one pass)."""
        client = self._follower.client
        if client is None:
            raise GatewayError("the compartment manager is not started")
        specs, row_problems = read_compartments(client.snapshot(TABLES))
        problems = [{"table": p.table, "key": p.key, "reason": p.reason} for p in row_problems]
        wanted = {name: layout(spec, self.prefix) for name, spec in specs.items()}
        for namespace in netops.namespaces(self.prefix):
            if namespace not in {lay.namespace for lay in wanted.values()}:
                self._teardown(namespace)
        for directory in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if directory.name not in {self._dir_name(lay) for lay in wanted.values()}:
                self._teardown(self.prefix + directory.name)
        shown: dict[str, dict[str, Any]] = {}
        for name, lay in sorted(wanted.items()):
            try:
                self._apply(lay)
            except GatewayError as err:
                log.warning("compartment %s: %s", name, err)
                problems.append({"table": "Gateway_Compartment", "key": name, "reason": str(err)})
            shown[name] = self._describe(lay)
        with self._cond:
            self._status = _Status(shown, problems, self._status.reconciles + 1)

    def teardown_all(self) -> list[str]:
        """Remove every compartment of this manager's prefix (and its daemons)."""
        removed = []
        for namespace in netops.namespaces(self.prefix):
            self._teardown(namespace)
            removed.append(namespace)
        for directory in sorted(p for p in self.root.iterdir() if p.is_dir()):
            self._teardown(self.prefix + directory.name)
        return removed

    def _dir_name(self, lay: Layout) -> str:
        return lay.namespace.removeprefix(self.prefix)

    def _dir(self, lay: Layout) -> Path:
        return self.root / self._dir_name(lay)

    def _applied(self, lay: Layout) -> dict[str, str]:
        try:
            found = json.loads((self._dir(lay) / APPLIED).read_text())
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def _save(self, lay: Layout, digests: Mapping[str, str]) -> None:
        path = self._dir(lay) / APPLIED
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(digests), sort_keys=True))
        tmp.replace(path)

    def _apply(self, lay: Layout) -> None:
        applied = self._applied(lay)
        want = {part: lay.digest(part) for part in PARTS}
        base_ok = (
            applied.get("base") == want["base"]
            and netops.namespace_exists(lay.namespace)
            and netops.link_exists(lay.vnet_host_side)
        )
        if not base_ok:
            log.info("compartment %s: building %s", lay.spec.name, lay.namespace)
            self._teardown(lay.namespace, keep_dir=True)
            applied = {}
            self._build_base(lay)
            self._save(lay, {"base": want["base"]})
        legs_ok = applied.get("legs") == want["legs"] and self._legs_alive(lay)
        if not legs_ok:
            self._build_legs(lay)
            applied = {"base": want["base"], "legs": want["legs"]}
            self._save(lay, applied)
        if applied.get("nft") != want["nft"]:
            netops.load_ruleset(lay.namespace, lay.ruleset)
            applied = {**applied, "nft": want["nft"]}
            self._save(lay, applied)
        ipsec_dir = self._dir(lay) / "ipsec"
        charon = daemons.running(daemons.charon_pidfile(ipsec_dir))
        if applied.get("ipsec") != want["ipsec"] or (lay.ipsec is not None and charon is None):
            daemons.stop(daemons.charon_pidfile(ipsec_dir))
            if lay.ipsec is not None:
                daemons.start_charon(lay.namespace, ipsec_dir, lay.ipsec)
            applied = {**applied, "ipsec": want["ipsec"]}
            self._save(lay, applied)

    def _build_base(self, lay: Layout) -> None:
        spec, ns = lay.spec, lay.namespace
        netops.create_namespace(ns)
        for key, value in SYSCTLS:
            netops.sysctl(ns, key, value)
        netops.add_veth(lay.vnet_host_side, ns, VNET_INTERFACE, MTU)
        netops.set_link(VNET_INTERFACE, ns, mac=spec.mac)
        netops.offloads_off(VNET_INTERFACE, ns)
        netops.replace_address(ns, VNET_INTERFACE, str(spec.address))
        netops.offloads_off(lay.vnet_host_side)
        netops.set_link(lay.vnet_host_side, alias=lay.port_alias)
        for route in lay.routes:
            if route.device == VNET_INTERFACE:
                netops.replace_route(ns, route.prefix, route.via, route.device)

    def _relay_pidfile(self, lay: Layout, inside: str) -> Path:
        return self._dir(lay) / f"relay-{inside}.pid"

    def _legs_alive(self, lay: Layout) -> bool:
        for leg in lay.legs:
            if not netops.link_exists(leg.inside, lay.namespace):
                return False
            if leg.relayed and daemons.running(self._relay_pidfile(lay, leg.inside)) is None:
                return False
        return True

    def _build_legs(self, lay: Layout) -> None:
        ns = lay.namespace
        for pidfile in self._dir(lay).glob("relay-*.pid"):
            daemons.stop(pidfile)
        for leg in lay.legs:
            netops.delete_link(leg.inside, ns)
            if leg.relayed:
                netops.delete_link(leg.host_side)
                netops.add_veth(leg.host_side, ns, leg.inside, MTU)
                netops.offloads_off(leg.inside, ns)
                netops.offloads_off(leg.host_side)
                netops.set_link(leg.host_side)
                daemons.start_relay(
                    self._relay_pidfile(lay, leg.inside), leg.parent, leg.host_side, leg.vlan
                )
            else:
                netops.add_macvlan(leg.parent, ns, leg.inside)
            netops.set_link(leg.inside, ns)
            for address in leg.addresses:
                netops.replace_address(ns, leg.inside, str(address))
        for route in lay.routes:
            if route.device != VNET_INTERFACE:
                netops.replace_route(ns, route.prefix, route.via, route.device)

    def _teardown(self, namespace: str, *, keep_dir: bool = False) -> None:
        """Stop a compartment's daemons and remove its namespace and links."""
        directory = self.root / namespace.removeprefix(self.prefix)
        if directory.is_dir():
            daemons.stop(daemons.charon_pidfile(directory / "ipsec"))
            for pidfile in directory.glob("relay-*.pid"):
                daemons.stop(pidfile)
        if netops.namespace_exists(namespace):
            log.info("compartment namespace %s: removing", namespace)
            netops.delete_namespace(namespace)
        if directory.is_dir() and not keep_dir:
            shutil.rmtree(directory, ignore_errors=True)
        elif directory.is_dir():
            (directory / APPLIED).unlink(missing_ok=True)

    def _describe(self, lay: Layout) -> dict[str, Any]:
        ipsec_dir = self._dir(lay) / "ipsec"
        tunnels = [c.short_name for c in lay.spec.connections if c.kind == "IPSec"]
        return {
            "namespace": lay.namespace,
            "port": lay.spec.port,
            "address": str(lay.spec.address),
            "legs": {
                leg.inside: {
                    "parent": leg.parent,
                    "vlan": leg.vlan,
                    "addresses": [str(a) for a in leg.addresses],
                    "relay": daemons.running(self._relay_pidfile(lay, leg.inside)),
                }
                for leg in lay.legs
            },
            "connections": {c.short_name: c.kind for c in lay.spec.connections},
            "charon": daemons.running(daemons.charon_pidfile(ipsec_dir)),
            "tunnels": {
                name: {"state": tunnel.state, "reason": tunnel.reason}
                for name, tunnel in daemons.tunnels(ipsec_dir, tunnels).items()
            },
            "digests": self._applied(lay),
        }
