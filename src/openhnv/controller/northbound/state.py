"""The controller's resources in memory: top-level documents by case-insensitive key.

A stored document is ``{"resourceId", "instanceId", "etag", "tags"?, "properties"}``;
child resources sit inline in their parent's ``properties`` as ``{"resourceId",
"instanceId", "tags"?, "properties"}``. Back-references, ``resourceRef`` and the child
etags are not stored: ``openhnv.controller.northbound.render`` adds them on the way out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from openhnv.controller.northbound.documents import children, copy_document, find_child
from openhnv.controller.northbound.paths import (
    TOP_LEVEL,
    ResourcePath,
    child_collections,
    parse_path,
)
from openhnv.controller.northbound.references import REFERRERS, references
from openhnv.controller.northbound.store import Document, Listing, Store

RESOURCE_PREFIX = "/resources"
ALLOCATOR_PREFIX = "/allocators/"
STATUS_PREFIX = "/status"  # configurationState, stored only when controllers share the store


def resource_key(path: ResourcePath) -> str:
    """The store key of a top-level resource."""
    return RESOURCE_PREFIX + path.top.key


def status_key(path: ResourcePath) -> str:
    """The store key of a top-level resource's configurationState (shared stores)."""
    return STATUS_PREFIX + path.top.key


def top_ref(key: str, doc: Document) -> str:
    """The ref of the top-level resource stored as ``key`` (``/networkinterfaces/x``)."""
    collection = key.split("/")[1]
    name = next((c for c in TOP_LEVEL if c.casefold() == collection), collection)
    return f"/{name}/{doc.get('resourceId', key.rsplit('/', 1)[-1])}"


NIC_PREFIX = "/networkinterfaces/"


@dataclass
class State:
    """Every top-level resource, by ``ResourcePath.key`` of its path.

    Change documents only through ``set`` and ``remove``: they keep the indexes that make
    a NIC PUT independent of the number of NICs (MACs in use; customer addresses in use
    per virtual network), the back-references (who refers to each resource: what a GET
    shows and what a delete must not strand) and the sorted key list of each collection.
    """

    docs: dict[str, Document] = field(default_factory=dict)
    allocators: dict[str, Document] = field(default_factory=dict)
    macs: dict[str, str] = field(default_factory=dict)  # MAC -> NIC ref
    addresses: dict[str, dict[str, str]] = field(default_factory=dict)  # vnet key -> CA -> NIC ref
    # Runtime only (never stored): key -> configurationState the publisher reports.
    configuration: dict[str, Document] = field(default_factory=dict)
    # target key -> referrer kind -> referrer ref -> the referring field
    referrers: dict[str, dict[tuple[str, ...], dict[str, str]]] = field(default_factory=dict)
    _refs_of: dict[str, list[tuple[str, tuple[str, ...], str]]] = field(default_factory=dict)
    _sorted: dict[str, list[str]] = field(default_factory=dict)

    def copy(self) -> State:
        """A copy that later ``set``/``remove`` calls on this state do not change.

        Shallow: stored documents are never changed in place (a change stores a new
        document), so the copy can be rendered without holding the service's lock.
        """
        return State(
            docs=dict(self.docs),
            allocators=dict(self.allocators),
            macs=dict(self.macs),
            addresses={vnet: dict(used) for vnet, used in self.addresses.items()},
            configuration=dict(self.configuration),
            referrers={
                target: {kind: dict(owners) for kind, owners in by_kind.items()}
                for target, by_kind in self.referrers.items()
            },
            _refs_of=dict(self._refs_of),
            _sorted=dict(self._sorted),
        )

    @classmethod
    def load(cls, store: Store) -> State:
        return cls.of(store.read())

    @classmethod
    def of(cls, listing: Listing) -> State:
        """The state a store listing holds."""
        state = cls()
        for entry in listing.entries:
            state.apply(entry.key, entry.value)
        return state

    def apply(self, store_key: str, value: Document | None) -> str | None:
        """Take one stored key's new value (None: deleted); the top-level ref whose
        northbound content this changes, if any.

        A change of ``provisioningState`` alone, of an allocator record or of a
        configurationState is not a northbound change: the publisher writes those.
        """
        if store_key.startswith(RESOURCE_PREFIX + "/"):
            key = store_key.removeprefix(RESOURCE_PREFIX)
            old = self.docs.get(key)
            if value is None:
                self.remove(key)
                return None if old is None else top_ref(key, old)
            self.set(key, value)
            return None if old is not None and same_but_state(old, value) else top_ref(key, value)
        if store_key.startswith(ALLOCATOR_PREFIX):
            if value is None:
                self.allocators.pop(store_key, None)
            else:
                self.allocators[store_key] = value
        elif store_key.startswith(STATUS_PREFIX + "/"):
            key = store_key.removeprefix(STATUS_PREFIX)
            if value is None:
                self.configuration.pop(key, None)
            elif key in self.docs:
                self.configuration[key] = value
        return None

    def set(self, key: str, doc: Document) -> None:
        """Store ``doc`` as the top-level resource ``key`` (a ``ResourcePath.key``)."""
        if key in self.docs:
            self._unindex(key)
        else:
            self._sorted.pop(key.split("/")[1], None)
        self.docs[key] = doc
        self._index(key, doc)

    def remove(self, key: str) -> None:
        if key in self.docs:
            self._unindex(key)
            del self.docs[key]
            self.configuration.pop(key, None)
            self._sorted.pop(key.split("/")[1], None)

    def _nic_entries(self, key: str, doc: Document) -> tuple[str | None, list[tuple[str, str]]]:
        props = doc.get("properties", {})
        entries: list[tuple[str, str]] = []
        for config in children(doc, "ipConfigurations"):
            cp = config.get("properties", {})
            ref = cp.get("subnet", {}).get("resourceRef")
            if isinstance(ref, str) and cp.get("privateIPAddress"):
                entries.append((parse_path(ref).top.key, str(cp["privateIPAddress"])))
        return props.get("privateMacAddress"), entries

    def _index(self, key: str, doc: Document) -> None:
        self._index_references(key, doc)
        if not key.startswith(NIC_PREFIX):
            return
        ref = f"/networkInterfaces/{doc['resourceId']}"
        mac, entries = self._nic_entries(key, doc)
        if mac:
            self.macs[mac] = ref
        for vnet, address in entries:
            self.addresses.setdefault(vnet, {})[address] = ref

    def _index_references(self, key: str, doc: Document) -> None:
        collection = next((c for c in REFERRERS if key.startswith(f"/{c.casefold()}/")), None)
        if collection is None:
            return
        held: list[tuple[str, tuple[str, ...], str]] = []
        for reference in references(ResourcePath((collection,), (str(doc["resourceId"]),)), doc):
            try:
                target = parse_path(str(reference.ref)).key
            except Exception:  # a malformed ref is refused by validation, never stored
                continue
            owner = reference.owner
            self.referrers.setdefault(target, {}).setdefault(owner.kind, {})[owner.ref] = (
                reference.field
            )
            held.append((target, owner.kind, owner.ref))
        self._refs_of[key] = held

    def _unindex(self, key: str) -> None:
        for target, kind, owner in self._refs_of.pop(key, []):
            owners = self.referrers.get(target, {}).get(kind, {})
            owners.pop(owner, None)
            if not owners:
                self.referrers.get(target, {}).pop(kind, None)
                if not self.referrers.get(target):
                    self.referrers.pop(target, None)
        if not key.startswith(NIC_PREFIX):
            return
        mac, entries = self._nic_entries(key, self.docs[key])
        if mac and self.macs.get(mac, "").casefold() == key:
            del self.macs[mac]
        for vnet, address in entries:
            used = self.addresses.get(vnet, {})
            if used.get(address, "").casefold() == key:
                del used[address]

    def top(self, path: ResourcePath) -> Document | None:
        return self.docs.get(path.top.key)

    def resolve(self, path: ResourcePath) -> Document | None:
        """The (child) document at ``path``, or None."""
        doc = self.top(path)
        for collection, resource_id in zip(path.collections[1:], path.ids[1:], strict=False):
            if doc is None:
                return None
            doc = find_child(doc, collection, resource_id)
        return doc

    def canonical(self, path: ResourcePath) -> ResourcePath:
        """``path`` spelled with the stored resources' casing (the path if absent)."""
        ids: list[str] = []
        doc = self.top(path)
        for i, resource_id in enumerate(path.ids):
            if i > 0 and doc is not None:
                doc = find_child(doc, path.collections[i], resource_id)
            ids.append(str(doc["resourceId"]) if doc is not None else resource_id)
        return ResourcePath(path.collections, tuple(ids))

    def all(self, collection: str) -> Iterator[tuple[ResourcePath, Document]]:
        """Every top-level resource of ``collection``, sorted by key."""
        name = collection.casefold()
        keys = self._sorted.get(name)
        if keys is None:
            prefix = "/" + name + "/"
            keys = self._sorted[name] = sorted(k for k in self.docs if k.startswith(prefix))
        for key in list(keys):
            doc = self.docs[key]
            yield ResourcePath((collection,), (str(doc["resourceId"]),)), doc


def walk(path: ResourcePath, doc: Document) -> Iterator[tuple[ResourcePath, Document]]:
    """``doc`` and every child below it, with their paths."""
    yield path, doc
    for collection in child_collections(path.kind):
        for child in children(doc, collection):
            yield from walk(path.child(collection, str(child["resourceId"])), child)


def path_of_key(key: str) -> ResourcePath:
    """The path of a top-level key such as ``/virtualnetworks/contoso`` (casing lost)."""
    return parse_path(key)


def same_but_state(old: Document, new: Document) -> bool:
    """The two versions differ at most in their provisioningState."""

    def rest(doc: Document) -> Document:
        props = doc.get("properties", {})
        return {**doc, "properties": {k: v for k, v in props.items() if k != "provisioningState"}}

    return rest(old) == rest(new)


def strip_etag(doc: Document) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "etag"}


__all__ = [
    "TOP_LEVEL",
    "State",
    "children",
    "copy_document",
    "find_child",
    "resource_key",
    "walk",
]
