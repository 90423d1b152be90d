"""The Network Controller service: PUT, GET, DELETE and list, one transaction each.

``ControllerService`` is what the REST edge calls; it knows nothing of
HTTP beyond the status a refused request maps to (``ApiError``). Every PUT or DELETE
validates the whole changed top-level resource (children inline), allocates what it
needs, and commits the resource and the allocator records in one store transaction.

Etags: a PUT that changes something gets a new etag; one that changes nothing keeps it.
Child resources share their top-level parent's etag, so ``If-Match`` on a child is
checked against the parent's.

Hooks for the southbound publisher: ``subscribe``
registers a listener told the top-level refs of every committed change (called with the
service lock held: it must only queue them); once ``track_provisioning`` is set, a NIC
PUT leaves the NIC ``Updating`` until the publisher sets ``Succeeded`` or ``Failed``
(``set_provisioning_state`` with the etag it compiled, so that a newer PUT is never
marked done early); ``set_configuration_state`` holds each resource's runtime
``configurationState`` (never stored); ``bind_server`` gives an unplaced NIC the server
whose host reported its port.

Every document handed out is a deep copy: a caller may change it freely.
"""

from __future__ import annotations

import builtins
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from openhnv.controller.errors import bad_request, conflict, not_found, precondition_failed
from openhnv.controller.northbound.models import parse_properties
from openhnv.controller.northbound.paths import (
    SINGLETON_COLLECTION,
    SINGLETON_ID,
    ResourcePath,
    check_resource_id,
    child_collections,
    parse_path,
)
from openhnv.controller.northbound.render import Renderer
from openhnv.controller.northbound.snapshot import render_all
from openhnv.controller.northbound.state import (
    RESOURCE_PREFIX,
    State,
    children,
    copy_document,
    find_child,
    resource_key,
    strip_etag,
)
from openhnv.controller.northbound.store import Document, Store
from openhnv.controller.northbound.validation import Admission, admit, check_dangling

SUCCEEDED = "Succeeded"
UPDATING = "Updating"
FAILED = "Failed"
PROVISIONING_STATES = ("Succeeded", "Updating", "Failed", "Deleting")
TRACKED_KINDS = (("networkInterfaces",),)  # kinds the publisher reports commits for

ChangeListener = Callable[[list[str]], None]
"""Told the top-level refs (``/networkInterfaces/web1``) of each committed change."""


def provisioning_state_after_put(path: ResourcePath, tracked: bool = False) -> str:
    """The provisioningState a resource has right after a valid PUT.

    ``Updating`` for a NIC when a publisher tracks commits (``tracked``): it becomes
    ``Succeeded`` once every host that needs the NIC's mapping has committed it.
    Everything else is ``Succeeded`` at once.
    """
    return UPDATING if tracked and path.kind in TRACKED_KINDS else SUCCEEDED


def new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def _etag_value(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def _check_if_match(if_match: str | None, ref: str, current: Document | None) -> None:
    if if_match is None or not if_match.strip():
        return
    wanted = [_etag_value(t) for t in if_match.split(",")]
    if current is None:
        raise precondition_failed(ref, if_match, "(none: the resource does not exist)")
    if "*" in wanted:
        return
    if _etag_value(current["etag"]) not in wanted:
        raise precondition_failed(ref, if_match, current["etag"])


def _assign_instance_ids(path: ResourcePath, new: Document, old: Document | None) -> None:
    new["instanceId"] = old["instanceId"] if old is not None else str(uuid.uuid4())
    for collection in child_collections(path.kind):
        for child in children(new, collection):
            before = find_child(old, collection, str(child["resourceId"])) if old else None
            _assign_instance_ids(path.child(collection, str(child["resourceId"])), child, before)


class ControllerService:
    """The northbound resources over a store; safe to call from several threads."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self.state = State.load(store)
        self._listeners: builtins.list[ChangeListener] = []
        self.track_provisioning = False
        self._ensure_singleton()

    def subscribe(self, listener: ChangeListener) -> None:
        """Call ``listener(refs)`` after every committed PUT or DELETE (lock held: queue only)."""
        with self._lock:
            self._listeners.append(listener)

    def _notify(self, refs: builtins.list[str]) -> None:
        for listener in self._listeners:
            listener(refs)

    def _ensure_singleton(self) -> None:
        path = ResourcePath((SINGLETON_COLLECTION,), (SINGLETON_ID,))
        if self.state.top(path) is None:
            doc: Document = {
                "resourceId": SINGLETON_ID,
                "instanceId": str(uuid.uuid4()),
                "etag": new_etag(),
                "properties": {"networkVirtualizationProtocol": "Vxlan"},
            }
            doc["properties"]["provisioningState"] = provisioning_state_after_put(path)
            self.store.put(resource_key(path), doc)
            self.state.set(path.key, doc)

    # reads

    def get(self, path: str) -> Document:
        """A resource's GET document, or a collection's ``{"value", "nextLink"}``."""
        target = parse_path(path)
        with self._lock:
            renderer = Renderer(self.state)
            if target.is_collection:
                return renderer.collection(target)
            return renderer.resource(target)

    def list(self, path: str) -> Document:
        """``{"value": [...], "nextLink": ""}`` of a (child) collection."""
        target = parse_path(path)
        if not target.is_collection:
            raise bad_request("", f"{target.ref} is a resource, not a collection")
        return self.get(path)

    def snapshot(self) -> dict[str, builtins.list[Document]]:
        """Every resource as GET returns it (see ``openhnv.controller.northbound.snapshot``).

        Renders a copy of the state taken under the lock, so writers wait only for
        the copy, not for the rendering.
        """
        with self._lock:
            state = self.state.copy()
        return render_all(state)

    def revision(self) -> int:
        return self.store.revision()

    # writes

    def put(self, path: str, body: object, if_match: str | None = None) -> tuple[bool, Document]:
        """Create or replace; (created, GET document). ApiError when refused."""
        target = parse_path(path)
        if target.is_collection:
            raise bad_request("", f"PUT needs a resource path such as {target.ref}/{{id}}")
        for resource_id in target.ids:
            check_resource_id(resource_id, "resourceId")
        if (
            target.collections[0] == SINGLETON_COLLECTION
            and target.ids[0].casefold() != SINGLETON_ID
        ):
            raise not_found(target.ref)
        if not isinstance(body, dict):
            raise bad_request("", "the body must be a JSON object")
        body_id = body.get("resourceId")
        if body_id is not None and (
            not isinstance(body_id, str) or body_id.casefold() != target.resource_id.casefold()
        ):
            raise bad_request(
                "resourceId", f"{body_id!r} differs from the path's {target.resource_id!r}"
            )
        tags = body.get("tags")
        if tags is not None and not isinstance(tags, dict):
            raise bad_request("tags", f"must be a JSON object, got {type(tags).__name__}")
        properties = parse_properties(target.kind, body.get("properties", {}))
        child: Document = {"resourceId": body_id or target.resource_id, "properties": properties}
        if tags is not None:
            child["tags"] = tags
        with self._lock:
            old = self.state.top(target)
            _check_if_match(if_match, target.top.ref, old)
            if len(target.ids) == 1:
                if old is not None:
                    child["resourceId"] = old["resourceId"]
                new, created = child, old is None
            else:
                if old is None:
                    raise not_found(target.top.ref)
                new = copy_document(old)
                created = self._place_child(new, target, child)
            return created, self._commit(target, old, new)

    def delete(self, path: str, if_match: str | None = None) -> None:
        """Remove a resource (a child: its parent changes). 404 when absent."""
        target = parse_path(path)
        if target.is_collection:
            raise bad_request("", f"DELETE needs a resource path such as {target.ref}/{{id}}")
        with self._lock:
            old = self.state.top(target)
            if old is None or self.state.resolve(target) is None:
                raise not_found(target.ref)
            _check_if_match(if_match, target.top.ref, old)
            top = self.state.canonical(target.top)
            if top.collections[0] == SINGLETON_COLLECTION:
                raise conflict("", f"{top.ref} always exists; PUT it to change it", "CannotDelete")
            if len(target.ids) == 1:
                check_dangling(self.state, top, old, None)
                self.store.delete(resource_key(top))
                self.state.remove(top.key)
                self._notify([top.ref])
                return
            new = copy_document(old)
            parent = new
            for collection, resource_id in zip(
                target.collections[1:-1], target.ids[1:-1], strict=True
            ):
                found = find_child(parent, collection, resource_id)
                if found is None:
                    raise not_found(target.ref)
                parent = found
            siblings = children(parent, target.collections[-1])
            siblings[:] = [
                c
                for c in siblings
                if str(c["resourceId"]).casefold() != target.resource_id.casefold()
            ]
            self._commit(target, old, new)

    def set_provisioning_state(self, ref: str, state: str, if_etag: str | None = None) -> bool:
        """Set a top-level resource's provisioningState (the publisher's hook).

        With ``if_etag``, only while the resource still has that etag (a newer PUT has
        its own state to reach). True when the stored state is now ``state``.
        """
        return self.set_provisioning_states([(ref, state, if_etag)])[0]

    def set_provisioning_states(
        self, updates: Sequence[tuple[str, str, str | None]]
    ) -> builtins.list[bool]:
        """``set_provisioning_state`` for many ``(ref, state, if_etag)``: one store commit.

        A resource that no longer exists gets False (it was deleted meanwhile), as does
        one whose etag moved on.
        """
        for _, state, _ in updates:
            if state not in PROVISIONING_STATES:
                raise bad_request(
                    "provisioningState",
                    f"{state!r} is not one of {', '.join(PROVISIONING_STATES)}",
                )
        results: builtins.list[bool] = []
        with self._lock:
            puts: dict[str, Document] = {}
            for ref, state, if_etag in updates:
                target = parse_path(ref).top
                old = puts.get(resource_key(target)) or self.state.top(target)
                if old is None or (if_etag is not None and old["etag"] != if_etag):
                    results.append(False)
                    continue
                results.append(True)
                if old["properties"].get("provisioningState") != state:
                    new = copy_document(old)
                    new["properties"]["provisioningState"] = state
                    puts[resource_key(target)] = new
            if puts:
                self.store.commit(puts)
                for key, doc in puts.items():
                    self.state.set(key.removeprefix(RESOURCE_PREFIX), doc)
        return results

    def set_configuration_state(self, ref: str, state: Document | None) -> None:
        """Show ``state`` as the resource's ``configurationState`` (None: the default).

        Runtime only: not stored, so a restarted controller starts from the default.
        """
        self.set_configuration_states({ref: state})

    def set_configuration_states(self, states: Mapping[str, Document | None]) -> None:
        """``set_configuration_state`` for many resources at once."""
        with self._lock:
            for ref, state in states.items():
                target = parse_path(ref).top
                if self.state.top(target) is None:
                    continue
                if state is None:
                    self.state.configuration.pop(target.key, None)
                else:
                    self.state.configuration[target.key] = copy_document(state)

    def bind_server(self, nic_ref: str, server_ref: str) -> bool:
        """Give the NIC at ``nic_ref`` the server ``server_ref`` if it has none.

        The northbound ``server`` reference stays authoritative: a NIC that already has
        one keeps it. True when the NIC was bound (a new etag; listeners are told).
        """
        target = parse_path(nic_ref).top
        with self._lock:
            old = self.state.top(target)
            if old is None or old["properties"].get("server"):
                return False
            new = copy_document(old)
            new["properties"]["server"] = {"resourceRef": server_ref}
            self._commit(target, old, new)
            return True

    # internals

    def _place_child(self, new: Document, target: ResourcePath, child: Document) -> bool:
        parent = new
        for collection, resource_id in zip(target.collections[1:-1], target.ids[1:-1], strict=True):
            found = find_child(parent, collection, resource_id)
            if found is None:
                raise not_found(ResourcePath(target.collections, target.ids).ref.rsplit("/", 2)[0])
            parent = found
        siblings = parent["properties"].setdefault(target.collections[-1], [])
        for i, sibling in enumerate(siblings):
            if str(sibling["resourceId"]).casefold() == target.resource_id.casefold():
                child["resourceId"] = sibling["resourceId"]
                siblings[i] = child
                return False
        siblings.append(child)
        return True

    def _commit(self, target: ResourcePath, old: Document | None, new: Document) -> Document:
        top = ResourcePath(target.collections[:1], (str(new["resourceId"]),))
        _assign_instance_ids(top, new, old)
        admission = Admission(self.state, top, old, new)
        admit(admission)
        if old is not None:
            check_dangling(self.state, top, old, new)
        if old is not None:  # unchanged apart from the state: keep the old state and etag
            new["properties"]["provisioningState"] = old["properties"].get("provisioningState")
        if old is not None and strip_etag(old) == new:
            new["etag"] = old["etag"]
        else:
            new["properties"]["provisioningState"] = provisioning_state_after_put(
                top, self.track_provisioning
            )
            new["etag"] = new_etag()
            puts: dict[str, Any] = {resource_key(top): new, **admission.allocator_updates}
            self.store.commit(puts)
            self.state.set(top.key, new)
            self.state.allocators.update(admission.allocator_updates)
            self._notify([top.ref])
        renderer = Renderer(self.state)
        if self.state.resolve(target) is None:  # a child DELETE: the parent is what changed
            return renderer.resource(top)
        return renderer.resource(target)
