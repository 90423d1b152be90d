"""Resource paths: the collection tree of the northbound API and case-insensitive refs.

A path names a collection or a resource relative to ``/networking/v1``, e.g.
``/virtualNetworks/Contoso/subnets/Web``. Collection names are matched without regard
to case and rewritten to Microsoft's spelling; resource ids keep the client's casing and
compare case-insensitively (``ResourcePath.key``). Child resources live inside their
top-level parent's document, so the store is keyed by the top-level resource only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from openhnv.controller.errors import bad_request, not_found

BASE_PATH = "/networking/v1"

# collection -> its child collections, recursively (Microsoft's names and casing)
TREE: dict[str, dict[str, dict[str, dict[str, object]]]] = {
    "logicalNetworks": {"subnets": {"ipPools": {}}},
    "macPools": {},
    "credentials": {},
    "servers": {"networkInterfaces": {}},
    "accessControlLists": {"aclRules": {}},
    "virtualNetworks": {"subnets": {}},
    "networkInterfaces": {"ipConfigurations": {}},
    "virtualNetworkManager": {},
    "publicIPAddresses": {},
    "gatewayPools": {},
    "gateways": {},
    "virtualGateways": {"networkConnections": {}},
}
TOP_LEVEL: tuple[str, ...] = tuple(TREE)
SINGLETON_COLLECTION = "virtualNetworkManager"
SINGLETON_ID = "configuration"
MAX_ID_LENGTH = 256


def _kinds() -> tuple[tuple[str, ...], ...]:
    found: list[tuple[str, ...]] = []

    def walk(prefix: tuple[str, ...], tree: dict[str, object]) -> None:
        for name, sub in tree.items():
            found.append((*prefix, name))
            if isinstance(sub, dict):
                walk((*prefix, name), sub)

    walk((), TREE)  # type: ignore[arg-type]
    return tuple(found)


KINDS: tuple[tuple[str, ...], ...] = _kinds()
"""Every collection chain, e.g. ``("virtualNetworks", "subnets")``."""


def _children_of(kind: tuple[str, ...]) -> dict[str, object]:
    tree: dict[str, object] = TREE  # type: ignore[assignment]
    for name in kind:
        sub = tree[name]
        tree = sub if isinstance(sub, dict) else {}
    return tree


def child_collections(kind: tuple[str, ...]) -> tuple[str, ...]:
    """The child collections held inline in a resource of ``kind``."""
    return tuple(_children_of(kind))


@dataclass(frozen=True, slots=True)
class ResourcePath:
    """A collection (``len(ids) == len(collections) - 1``) or a resource."""

    collections: tuple[str, ...]
    ids: tuple[str, ...]
    _ref: str = field(init=False, repr=False, compare=False)
    _key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts: list[str] = []
        for i, name in enumerate(self.collections):
            parts.append(name)
            if i < len(self.ids):
                parts.append(self.ids[i])
        ref = "/" + "/".join(parts)
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_key", ref.casefold())

    @property
    def is_collection(self) -> bool:
        return len(self.ids) < len(self.collections)

    @property
    def kind(self) -> tuple[str, ...]:
        return self.collections

    @property
    def ref(self) -> str:
        """``/virtualNetworks/Contoso/subnets/Web`` (a collection path ends at its name)."""
        return self._ref

    @property
    def top(self) -> ResourcePath:
        """The top-level resource this path lives in."""
        return ResourcePath(self.collections[:1], self.ids[:1])

    @property
    def key(self) -> str:
        """The case-insensitive identity of the resource (or collection)."""
        return self._key

    @property
    def resource_id(self) -> str:
        return self.ids[-1]

    def child(self, collection: str, resource_id: str) -> ResourcePath:
        return ResourcePath((*self.collections, collection), (*self.ids, resource_id))


def _canonical_collection(name: str, allowed: tuple[str, ...], path: str) -> str:
    for candidate in allowed:
        if candidate.casefold() == name.casefold():
            return candidate
    raise not_found(path)


def check_resource_id(resource_id: str, field: str) -> None:
    """A resourceId is a non-empty name without '/' or control characters."""
    if not resource_id or len(resource_id) > MAX_ID_LENGTH:
        raise bad_request(field, f"must be 1..{MAX_ID_LENGTH} characters, got {resource_id!r}")
    if "/" in resource_id or any(ord(c) < 0x20 or ord(c) == 0x7F for c in resource_id):
        raise bad_request(field, f"{resource_id!r} contains '/' or a control character")


def parse_path(path: str) -> ResourcePath:
    """Parse a path relative to ``/networking/v1`` (the prefix itself is also accepted)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and f"/{parts[0]}/{parts[1]}".casefold() == BASE_PATH:
        parts = parts[2:]
    if not parts:
        raise not_found(path or "/")
    collections: list[str] = []
    ids: list[str] = []
    allowed: tuple[str, ...] = TOP_LEVEL
    for i, part in enumerate(parts):
        if i % 2 == 0:
            name = _canonical_collection(part, allowed, path)
            collections.append(name)
            allowed = child_collections(tuple(collections))
        else:
            ids.append(part)
    return ResourcePath(tuple(collections), tuple(ids))


def parse_ref(ref: object, field: str, expected: tuple[str, ...] | None = None) -> ResourcePath:
    """A ``resourceRef`` value as a resource path; 400 naming ``field`` when malformed."""
    if not isinstance(ref, str) or not ref.startswith("/"):
        raise bad_request(field, f"must be a path like /virtualNetworks/x, got {ref!r}")
    try:
        parsed = parse_path(ref)
    except Exception:
        raise bad_request(field, f"{ref} is not a Network Controller resource path") from None
    if parsed.is_collection:
        raise bad_request(field, f"{ref} names a collection, not a resource")
    if expected is not None and parsed.kind != expected:
        want = "/" + "/{id}/".join(expected) + "/{id}"
        raise bad_request(field, f"{ref} is not a reference of the form {want}")
    return parsed
