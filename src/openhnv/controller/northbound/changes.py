"""What one northbound write changes, planned against the state and not yet committed.

A ``Plan`` is the store puts and deletes of one PUT or DELETE (the top-level document,
the allocator records it advanced) and how to render the answer once they are applied.
Planning validates the whole changed top-level resource against the state (children
inline), allocates what it needs and raises ``ApiError`` when the request is refused;
it changes nothing. The service commits a plan in one store transaction that compares
the revision the state was at, and plans again if another write came first.

Etags: a PUT that changes something gets a new etag; one that changes nothing keeps it
(and commits nothing). Child resources share their top-level parent's etag, so
``If-Match`` on a child is checked against the parent's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from openhnv.controller.errors import conflict, not_found, precondition_failed
from openhnv.controller.northbound.paths import (
    SINGLETON_COLLECTION,
    ResourcePath,
    child_collections,
)
from openhnv.controller.northbound.render import Renderer
from openhnv.controller.northbound.state import (
    State,
    children,
    copy_document,
    find_child,
    resource_key,
    status_key,
    strip_etag,
)
from openhnv.controller.northbound.store import Document
from openhnv.controller.northbound.validation import Admission, admit, check_dangling

SUCCEEDED = "Succeeded"
UPDATING = "Updating"
FAILED = "Failed"
PROVISIONING_STATES = ("Succeeded", "Updating", "Failed", "Deleting")
TRACKED_KINDS = (("networkInterfaces",),)  # kinds the publisher reports commits for

T = TypeVar("T")


@dataclass
class Plan(Generic[T]):
    """Store changes of one write, and its answer once they are applied."""

    answer: Callable[[State], T]
    puts: dict[str, Document] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.puts and not self.deletes


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


def check_if_match(if_match: str | None, ref: str, current: Document | None) -> None:
    """412 unless ``If-Match`` (if given) names the current etag, or ``*`` and it exists."""
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


def place_child(new: Document, target: ResourcePath, child: Document) -> bool:
    """Put ``child`` at ``target`` inside the top-level ``new``; True if it is new there."""
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


def _nothing(_: State) -> None:
    return None


def plan_put(
    state: State, target: ResourcePath, child: Document, if_match: str | None, tracked: bool
) -> Plan[tuple[bool, Document]]:
    """A PUT of ``child`` (the parsed body) at ``target``: (created, GET document)."""
    old = state.top(target)
    check_if_match(if_match, target.top.ref, old)
    candidate = copy_document(child)
    if len(target.ids) == 1:
        if old is not None:
            candidate["resourceId"] = old["resourceId"]
        new, created = candidate, old is None
    else:
        if old is None:
            raise not_found(target.top.ref)
        new = copy_document(old)
        created = place_child(new, target, candidate)
    plan = plan_change(state, target, old, new, tracked)
    render = plan.answer
    return Plan(lambda now: (created, render(now)), plan.puts, plan.deletes)


def plan_delete(
    state: State, target: ResourcePath, if_match: str | None, tracked: bool
) -> Plan[None]:
    """A DELETE of the resource at ``target`` (a child: its parent changes)."""
    old = state.top(target)
    if old is None or state.resolve(target) is None:
        raise not_found(target.ref)
    check_if_match(if_match, target.top.ref, old)
    top = state.canonical(target.top)
    if top.collections[0] == SINGLETON_COLLECTION:
        raise conflict("", f"{top.ref} always exists; PUT it to change it", "CannotDelete")
    if len(target.ids) == 1:
        check_dangling(state, top, old, None)
        deletes = [resource_key(top)]
        if top.key in state.configuration:
            deletes.append(status_key(top))
        return Plan(_nothing, deletes=deletes)
    new = copy_document(old)
    parent = new
    for collection, resource_id in zip(target.collections[1:-1], target.ids[1:-1], strict=True):
        found = find_child(parent, collection, resource_id)
        if found is None:
            raise not_found(target.ref)
        parent = found
    siblings = children(parent, target.collections[-1])
    siblings[:] = [
        c for c in siblings if str(c["resourceId"]).casefold() != target.resource_id.casefold()
    ]
    plan = plan_change(state, target, old, new, tracked)
    return Plan(_nothing, plan.puts, plan.deletes)


def plan_change(
    state: State, target: ResourcePath, old: Document | None, new: Document, tracked: bool
) -> Plan[Document]:
    """Validate and allocate the new top-level ``new`` (replacing ``old``)."""
    top = ResourcePath(target.collections[:1], (str(new["resourceId"]),))
    _assign_instance_ids(top, new, old)
    admission = Admission(state, top, old, new)
    admit(admission)
    if old is not None:
        check_dangling(state, top, old, new)
        # unchanged apart from the state: keep the old state and etag
        new["properties"]["provisioningState"] = old["properties"].get("provisioningState")
    puts: dict[str, Document] = {}
    if old is not None and strip_etag(old) == new:
        new["etag"] = old["etag"]
    else:
        new["properties"]["provisioningState"] = provisioning_state_after_put(top, tracked)
        new["etag"] = new_etag()
        puts = {resource_key(top): new, **admission.allocator_updates}

    def answer(now: State) -> Document:
        renderer = Renderer(now)
        if now.resolve(target) is None:  # a child DELETE: the parent is what changed
            return renderer.resource(top)
        return renderer.resource(target)

    return Plan(answer, puts)
