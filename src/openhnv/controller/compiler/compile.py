"""The policy compiler: a snapshot of northbound resources -> each host's desired rows.

Pure functions, no I/O (docs/southbound.md fixes every table, key and column). A host gets:

- its own ``Global``, ``Physical_Switch`` and ``Provider_Address`` rows;
- for every virtual network with a NIC on it: the VNet's ``Logical_Router``, a
  ``Logical_Switch`` per subnet (so the distributed router can route to all of them), a
  ``Ucast_Macs_Remote`` per customer address of the VNet (``local`` for this host's NICs),
  the ``Physical_Locator`` of every PA those point at, and per subnet with NICs a
  ``Physical_Locator_Set`` and ``Mcast_Macs_Remote`` for unicast replication;
- per local NIC a ``Physical_Port`` and its ``FW_Rules``.

Rows of one virtual network are built once and shared by every host that needs them;
rows are read-only ``Mapping`` values, so sharing is safe. ``Compiler`` memoises those
pieces; ``Compiler.update`` carries them across a change, recompiles only the hosts the
change can affect and returns their minimal row changes (the one-NIC incremental path).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeAlias

from openhnv.controller.compiler.digest import piece_digest, state_digest
from openhnv.controller.compiler.gateway_rows import gateway_piece
from openhnv.controller.compiler.host_rows import TABLES, Piece, host_piece, nic_piece, vnet_piece
from openhnv.controller.compiler.index import (
    CompileProblem,
    Index,
    Nic,
    Snapshot,
)
from openhnv.controller.compiler.values import NO_HOST
from openhnv.controller.errors import CompileError
from openhnv.ovsdb.rows import DesiredState, Row, RowChange, diff

__all__ = [
    "TABLES",
    "CompileError",
    "CompileProblem",
    "Compiled",
    "Compiler",
    "Index",
    "Snapshot",
    "Update",
    "affected_hosts",
    "collector_paused",
    "compile_datacenter",
    "compile_host",
]


@dataclass(frozen=True, slots=True)
class Compiled:
    """Every host's desired state, and what had to be left out."""

    hosts: dict[str, DesiredState]
    problems: list[CompileProblem]


@dataclass(frozen=True, slots=True)
class Update:
    """The result of ``Compiler.update``: the next compiler and the affected hosts' rows."""

    compiler: Compiler
    states: dict[str, DesiredState]  # new state of every affected host ({} once removed)
    changes: dict[str, list[RowChange]]  # per affected host, possibly empty


def compile_host(snapshot: Snapshot, server_id: str) -> DesiredState:
    """The desired state of the host ``server_id`` (CompileError if it is not a server)."""
    return Compiler(Index.build(snapshot)).host_state(server_id)


def compile_datacenter(snapshot: Snapshot) -> Compiled:
    """The desired state of every server of the snapshot, and the problems found."""
    with collector_paused():
        return Compiler(Index.build(snapshot)).datacenter()


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a bulk compile, then restore it.

    A datacenter compile builds hundreds of thousands of small acyclic containers;
    the collector's repeated scans of them cost more than the compile itself, and
    nothing the compiler builds forms a cycle, so pausing frees nothing late.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True, slots=True)
class _Emitted:
    """A host's state and the pieces it was merged from, later pieces winning."""

    state: DesiredState
    pieces: tuple[tuple[str, Piece], ...]  # (source, piece): "vnet:<id>", "nic:<key>", "host"


Changed: TypeAlias = dict[str, set[str]]
"""Table -> keys whose row may differ between two host states."""


@dataclass(slots=True)
class Compiler:
    """Emits host states from one ``Index``, memoising the pieces shared between hosts."""

    index: Index
    _vnet_rows: dict[str, Piece] = field(default_factory=dict)
    _nic_rows: dict[str, Piece] = field(default_factory=dict)
    _hosts: dict[str, _Emitted] = field(default_factory=dict)
    _host_rows: dict[str, Piece] = field(default_factory=dict)
    _previous_vnet: dict[str, Piece] = field(default_factory=dict)
    _digests: dict[str, tuple[Piece, str]] = field(
        default_factory=dict
    )  # source -> (piece, digest)

    def datacenter(self) -> Compiled:
        """Every host's state and the index's problems."""
        with collector_paused():
            hosts = {
                server_id: self.host_state(server_id) for server_id in sorted(self.index.hosts)
            }
        return Compiled(hosts=hosts, problems=self.index.problems)

    def host_state(self, server_id: str) -> DesiredState:
        """The desired state of one host."""
        return self._host(server_id).state

    def host_digest(self, server_id: str) -> str:
        """The digest of one host's desired state (``openhnv.controller.compiler.digest``)."""
        named: list[tuple[str, str]] = []
        for source, piece in self._host(server_id).pieces:
            name = f"{source}@{server_id}" if source in ("host", "gateway") else source
            cached = self._digests.get(name)
            if cached is None or cached[0] is not piece:
                cached = self._digests[name] = (piece, piece_digest(piece))
            named.append((source, cached[1]))
        return state_digest(named)

    def update(self, index: Index, changed_refs: Collection[str]) -> Update:
        """Move to ``index`` after ``changed_refs`` changed; diff every affected host.

        When only NICs changed, everything not touching their virtual networks is kept
        and each affected host's state is patched at the keys whose source changed; any
        other change starts from cold pieces (still recompiling only the affected hosts).
        The memoised pieces move to the returned compiler: this one stays correct for its
        own index but starts cold.
        """
        hosts = affected_hosts(self.index, index, changed_refs)
        present = sorted(h for h in hosts if h in self.index.hosts)
        before = {server_id: self._host(server_id) for server_id in present}
        nxt = Compiler(index)
        nxt._digests, self._digests = self._digests, {}  # checked by identity: always valid
        only_nics = all(_collection(ref) == "networkinterfaces" for ref in changed_refs)
        if only_nics:
            # Hand the memoised pieces over (no copy: this compiler starts cold again).
            touched_nics = {ref.rstrip("/").casefold() for ref in changed_refs}
            nxt._vnet_rows, self._vnet_rows = self._vnet_rows, {}
            nxt._nic_rows, self._nic_rows = self._nic_rows, {}
            nxt._hosts, self._hosts = self._hosts, {}
            nxt._host_rows, self._host_rows = self._host_rows, {}
            for idx in (self.index, index):
                for key in touched_nics & idx.nics.keys():
                    vnet_id = idx.nics[key].vnet_id
                    nxt._host_rows.pop(idx.nics[key].server_id, None)
                    if vnet_id in nxt._vnet_rows:
                        nxt._previous_vnet[vnet_id] = nxt._vnet_rows.pop(vnet_id)
            for key in touched_nics:
                nxt._nic_rows.pop(key, None)
            for server_id in hosts:
                nxt._hosts.pop(server_id, None)
        states: dict[str, DesiredState] = {}
        changes: dict[str, list[RowChange]] = {}
        deltas: dict[tuple[int, int], list[tuple[str, str]]] = {}
        for server_id in sorted(hosts):
            old = before.get(server_id)
            if server_id not in index.hosts:
                states[server_id] = {}
                changes[server_id] = diff(old.state, {}) if old is not None else []
                continue
            pieces = nxt._pieces(server_id)
            if old is None or not only_nics:  # nothing shared with the old pieces
                new = nxt._hosts[server_id] = _assemble(pieces)
                states[server_id] = new.state
                changes[server_id] = diff(old.state if old is not None else {}, new.state)
                continue
            changed = _changed_keys(old.pieces, pieces, deltas)
            new = nxt._hosts[server_id] = _patch(old, pieces, changed)
            states[server_id] = new.state
            changes[server_id] = diff_keys(old.state, new.state, changed)
        nxt._previous_vnet.clear()
        return Update(compiler=nxt, states=states, changes=changes)

    def _host(self, server_id: str) -> _Emitted:
        emitted = self._hosts.get(server_id)
        if emitted is None:
            if server_id not in self.index.hosts:
                raise CompileError(f"server {server_id!r} is not in the snapshot")
            emitted = self._hosts[server_id] = _assemble(self._pieces(server_id))
        return emitted

    def _pieces(self, server_id: str) -> list[tuple[str, Piece]]:
        """The pieces of a host's state in merge order: VNets, local NICs, the host."""
        index = self.index
        local = sorted(index.nics_by_host.get(server_id, ()))
        local_nics = [index.nics[key] for key in local]
        pieces: list[tuple[str, Piece]] = []
        for vnet_id in sorted({nic.vnet_id for nic in local_nics if not nic.subnet.logical}):
            pieces.append((f"vnet:{vnet_id}", self._vnet(vnet_id)))
        for key, nic in zip(local, local_nics, strict=True):
            pieces.append((f"nic:{key}", self._nic(key, nic)))
        own = self._host_rows.get(server_id)
        if own is None:
            own = self._host_rows[server_id] = host_piece(index, server_id, local_nics)
        pieces.append(("host", own))
        if server_id in index.gateways.hosts:
            pieces.append(("gateway", gateway_piece(index, server_id)))
        return pieces

    def _vnet(self, vnet_id: str) -> Piece:
        pieces = self._vnet_rows.get(vnet_id)
        if pieces is None:
            pieces = vnet_piece(self.index, vnet_id)
            previous = self._previous_vnet.pop(vnet_id, None)
            if previous is not None:
                pieces = _keep_equal_rows(pieces, previous)
            self._vnet_rows[vnet_id] = pieces
        return pieces

    def _nic(self, key: str, nic: Nic) -> Mapping[str, Mapping[str, Row]]:
        pieces = self._nic_rows.get(key)
        if pieces is None:
            pieces = self._nic_rows[key] = nic_piece(self.index, nic)
        return pieces


def affected_hosts(old: Index, new: Index, changed_refs: Iterable[str]) -> set[str]:
    """The hosts whose desired state a change of ``changed_refs`` can alter.

    A NIC: its host and every host with a NIC in its virtual network, before and after.
    A virtual network (or one of its subnets): the hosts with a NIC in it. An ACL: the
    hosts of the NICs using it. A server: itself and the hosts sharing a virtual network
    with it. The virtualNetworkManager configuration, or anything unknown: every host.
    macPools reach hosts only through the allocated values of servers and NICs, so they
    affect none by themselves; gateway resources (and logicalNetworks and credentials,
    which gateways use) affect gateway hosts and VNets with a gateway (``gateway_hosts``);
    a logical network also the hosts of the NICs on its subnets.
    """
    hosts: set[str] = set()
    for ref in changed_refs:
        hosts_of = _HOSTS_OF.get(_collection(ref), _every_host)
        key = ref.rstrip("/").casefold()
        for idx in (old, new):
            hosts |= hosts_of(idx, key)
    return hosts


def _top_key(key: str) -> str:
    """``/virtualnetworks/a/subnets/b`` -> ``/virtualnetworks/a``."""
    return "/".join(key.split("/")[:3])


def _nic_hosts(idx: Index, key: str) -> set[str]:
    nic = idx.nics.get(key)
    if nic is None:
        return set()
    on_host = {nic.server_id} if nic.server_id != NO_HOST else set()
    return on_host | idx.hosts_of_vnet(nic.vnet_id)


def _vnet_hosts(idx: Index, key: str) -> set[str]:
    vnet_key = _top_key(key)
    hosts: set[str] = set()
    for vnet in idx.vnets.values():
        if vnet.ref.casefold() == vnet_key:
            hosts |= idx.hosts_of_vnet(vnet.vnet_id)
    return hosts


def _acl_hosts(idx: Index, key: str) -> set[str]:
    acl_key = _top_key(key)
    return {nic.server_id for nic in idx.nics.values() if acl_key in _acl_keys(nic)}


def _server_hosts(idx: Index, key: str) -> set[str]:
    server_id = idx.host_by_ref.get(_top_key(key))
    if server_id is None:
        return set()
    hosts = {server_id}
    for nic_key in idx.nics_by_host.get(server_id, ()):
        hosts |= idx.hosts_of_vnet(idx.nics[nic_key].vnet_id)
    return hosts


def _no_host(idx: Index, key: str) -> set[str]:
    return set()


def _gateway_hosts(idx: Index, key: str) -> set[str]:
    """Hosts a change of a gateway resource can alter: a virtual gateway's own gateway
    host and VNet; for the others, every gateway host and every VNet with a gateway."""
    compartments = idx.gateways.compartments
    if key.startswith("/virtualgateways/"):
        found = compartments.get(_top_key(key))
        chosen = [found] if found is not None else []
    else:
        chosen = list(compartments.values())
    hosts: set[str] = set()
    for compartment in chosen:
        hosts.add(compartment.server_id)
        hosts |= idx.hosts_of_vnet(compartment.vnet_id)
    return hosts


def _logical_hosts(idx: Index, key: str) -> set[str]:
    """A logical network: the gateway hosts (``_gateway_hosts``) and the hosts of the
    NICs on its subnets (access ports)."""
    prefix = _top_key(key) + "/"
    hosts = _gateway_hosts(idx, key)
    for nic in idx.nics.values():
        if nic.subnet.logical and nic.subnet.ref.casefold().startswith(prefix):
            hosts.add(nic.server_id)
    return hosts


def _every_host(idx: Index, key: str) -> set[str]:
    return set(idx.hosts)


_HOSTS_OF: dict[str, Callable[[Index, str], set[str]]] = {
    "networkinterfaces": _nic_hosts,
    "virtualnetworks": _vnet_hosts,
    "accesscontrollists": _acl_hosts,
    "servers": _server_hosts,
    "macpools": _no_host,
    # Gateways, and what they use: logical networks (external legs), credentials (IPsec
    # certificates); these reach other hosts only through allocated values.
    "virtualgateways": _gateway_hosts,
    "gateways": _gateway_hosts,
    "gatewaypools": _gateway_hosts,
    "publicipaddresses": _gateway_hosts,
    "logicalnetworks": _logical_hosts,
    "credentials": _gateway_hosts,
}
"""Collection (case-folded) -> the hosts a change of one of its resources can alter;
a collection not named here (the configuration singleton) alters every host."""


def _assemble(pieces: Sequence[tuple[str, Piece]]) -> _Emitted:
    """Merge pieces into a host state, later pieces winning."""
    state: dict[str, dict[str, Row]] = {table: {} for table in TABLES}
    for _, piece in pieces:
        for table, rows in piece.items():
            state[table].update(rows)
    return _Emitted(state=state, pieces=tuple(pieces))


def _changed_keys(
    old: Sequence[tuple[str, Piece]],
    new: Sequence[tuple[str, Piece]],
    deltas: dict[tuple[int, int], list[tuple[str, str]]],
) -> Changed:
    """The keys whose winning row may differ: those of sources whose piece changed.

    A piece that is the same object in both lists contributes nothing; a changed piece
    contributes the keys whose row object differs (memoised per pair in ``deltas``, as
    every host of a virtual network sees the same pair).
    """
    before = dict(old)
    after = dict(new)
    changed: Changed = {}
    for source in before.keys() | after.keys():
        old_piece = before.get(source)
        new_piece = after.get(source)
        if old_piece is new_piece:
            continue
        pair = (id(old_piece), id(new_piece))
        delta = deltas.get(pair)
        if delta is None:
            delta = deltas[pair] = _piece_delta(old_piece or {}, new_piece or {})
        for table, key in delta:
            changed.setdefault(table, set()).add(key)
    return changed


def _piece_delta(old: Piece, new: Piece) -> list[tuple[str, str]]:
    """(table, key) of every row that is not the same object in both pieces."""
    delta: list[tuple[str, str]] = []
    for table in old.keys() | new.keys():
        old_rows = old.get(table, {})
        new_rows = new.get(table, {})
        delta.extend((table, k) for k, row in new_rows.items() if old_rows.get(k) is not row)
        delta.extend((table, k) for k in old_rows if k not in new_rows)
    return delta


def _patch(old: _Emitted, pieces: Sequence[tuple[str, Piece]], changed: Changed) -> _Emitted:
    """The host state after its pieces changed: only the ``changed`` keys are re-merged.

    Tables without a changed key are the very same (read-only) mappings as before.
    """
    state = dict(old.state)
    for table, keys in changed.items():
        rows = dict(state.get(table, {}))
        for key in keys:
            for _, piece in reversed(pieces):
                found = piece.get(table)
                if found is not None and key in found:
                    rows[key] = found[key]
                    break
            else:
                rows.pop(key, None)
        state[table] = rows
    return _Emitted(state=state, pieces=tuple(pieces))


def _keep_equal_rows(piece: Piece, previous: Piece) -> Piece:
    """``piece`` with every row equal to its ``previous`` one replaced by that object.

    A change to one NIC rebuilds its virtual network's rows; keeping the unchanged row
    objects lets ``_changed_keys`` skip them on every host by identity.
    """
    out: dict[str, dict[str, Row]] = {}
    for table, rows in piece.items():
        before = previous.get(table, {})
        kept: dict[str, Row] = {}
        for key, row in rows.items():
            old = before.get(key)
            kept[key] = old if old is not None and old == row else row
        out[table] = kept
    return out


def diff_keys(old: DesiredState, new: DesiredState, changed: Changed) -> list[RowChange]:
    """``diff(old, new)`` when only the ``changed`` keys can differ."""
    old_sub: dict[str, dict[str, Row]] = {}
    new_sub: dict[str, dict[str, Row]] = {}
    for table in TABLES:
        keys = changed.get(table)
        if not keys:
            continue
        old_rows = old.get(table, {})
        new_rows = new.get(table, {})
        differing = sorted(k for k in keys if old_rows.get(k) is not new_rows.get(k))
        old_sub[table] = {k: old_rows[k] for k in differing if k in old_rows}
        new_sub[table] = {k: new_rows[k] for k in differing if k in new_rows}
    return diff(old_sub, new_sub)


def _collection(ref: str) -> str:
    return ref.strip("/").split("/", 1)[0].casefold()


def _acl_keys(nic: Nic) -> set[str]:
    return {r.rstrip("/").casefold() for r in (nic.subnet.acl_ref, nic.acl_ref) if r}
