"""The Network Controller service: PUT, GET, DELETE and list, one store transaction each.

``ControllerService`` is what the REST edge calls; it knows nothing of HTTP beyond the
status a refused request maps to (``ApiError``). It holds the store's state in memory
(``StoreFollower``) and works the way Kubernetes' apiserver does on etcd:

- a write plans its change against the state (``openhnv.controller.northbound.changes``:
  validation, allocation, etags) and commits it in one transaction that compares the
  store revision the state was at. If any other write committed first, anywhere, the
  transaction fails, the state catches up and the write is planned again. So If-Match
  and every allocation (VSID, RDID, MAC, PA, CA) hold across replicas without a lock;
- a read first catches up to the store's newest revision when other controllers share
  the store, so it sees every write acknowledged by any of them;
- the publisher's own writes (provisioningState, configurationState) compare only the
  keys they touch, and listeners are never told of them.

Hooks for the southbound publisher: ``subscribe`` registers a listener told the
top-level refs of every committed change, from this or another replica (called with
the state lock held: it must only queue them); once ``track_provisioning`` is set, a
NIC PUT leaves the NIC ``Updating`` until the publisher sets ``Succeeded`` or ``Failed``
(``set_provisioning_states`` with the etag it compiled, so that a newer PUT is never
marked done early); ``set_configuration_states`` holds each resource's runtime
``configurationState`` (in memory; in the store when controllers share it, so every
replica shows it); ``bind_server`` gives an unplaced NIC the server whose host reported
its port.

Every document handed out is a deep copy: a caller may change it freely.
"""

from __future__ import annotations

import builtins
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from openhnv.controller.errors import ApiError, bad_request, not_found
from openhnv.controller.northbound.changes import (
    FAILED,
    PROVISIONING_STATES,
    SUCCEEDED,
    UPDATING,
    Plan,
    new_etag,
    place_child,
    plan_change,
    plan_delete,
    plan_put,
    provisioning_state_after_put,
)
from openhnv.controller.northbound.documents import ENVELOPE_OBJECTS
from openhnv.controller.northbound.follower import StoreFollower
from openhnv.controller.northbound.models import parse_properties
from openhnv.controller.northbound.paths import (
    SINGLETON_COLLECTION,
    SINGLETON_ID,
    ResourcePath,
    check_resource_id,
    parse_path,
)
from openhnv.controller.northbound.render import Renderer
from openhnv.controller.northbound.snapshot import render_all
from openhnv.controller.northbound.state import (
    State,
    copy_document,
    resource_key,
    status_key,
)
from openhnv.controller.northbound.store import Document, Store, StoreConflict

__all__ = [
    "FAILED",
    "PROVISIONING_STATES",
    "SUCCEEDED",
    "UPDATING",
    "ChangeListener",
    "ControllerService",
    "new_etag",
    "place_child",
    "provisioning_state_after_put",
]

SERVICE_UNAVAILABLE = 503
WRITE_BUDGET = 10.0  # seconds a write keeps retrying after conflicts before giving up
STATE_BATCH = 100  # provisioning/configuration states per store commit

ChangeListener = Callable[[list[str]], None]
"""Told the top-level refs (``/networkInterfaces/web1``) of each committed change."""

T = TypeVar("T")


def json_type(value: object) -> str:
    """How JSON names the type of ``value`` (``null``, ``array``, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        int: "a number",
        float: "a number",
    }
    return names.get(type(value), type(value).__name__)


class ControllerService:
    """The northbound resources over a store; safe to call from several threads."""

    def __init__(self, store: Store, *, follow: bool = True) -> None:
        """``follow``: with a shared store, follow other writers in a thread at once."""
        self.store = store
        self._listeners: builtins.list[ChangeListener] = []
        self._follower = StoreFollower(store, self._notify)
        self._lock = self._follower.lock  # guards the state and the listeners
        self._write_lock = threading.Lock()  # one write at a time from this process
        self.track_provisioning = False
        self._ensure_singleton()
        if follow and store.shared:
            self._follower.start()

    @property
    def state(self) -> State:
        return self._follower.state

    def close(self) -> None:
        """Stop following the store, then close it (which ends the follower's stream)."""
        self._follower.stop(wait=False)
        self.store.close()
        self._follower.stop()

    def subscribe(self, listener: ChangeListener) -> None:
        """Call ``listener(refs)`` after every committed PUT or DELETE (lock held: queue only)."""
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: ChangeListener) -> None:
        with self._lock:
            self._listeners = [x for x in self._listeners if x is not listener]

    def _notify(self, refs: builtins.list[str]) -> None:
        for listener in self._listeners:
            listener(refs)

    def _ensure_singleton(self) -> None:
        path = ResourcePath((SINGLETON_COLLECTION,), (SINGLETON_ID,))

        def plan() -> Plan[None]:
            if self.state.top(path) is not None:
                return Plan(lambda _: None)
            doc: Document = {
                "resourceId": SINGLETON_ID,
                "instanceId": str(uuid.uuid4()),
                "etag": new_etag(),
                "properties": {"networkVirtualizationProtocol": "Vxlan"},
            }
            doc["properties"]["provisioningState"] = provisioning_state_after_put(path)
            return Plan(lambda _: None, {resource_key(path): doc})

        self._write(plan)

    # reads

    def sync(self) -> None:
        """Catch up with the store (every write acknowledged by any controller)."""
        self._follower.sync()

    def get(self, path: str, *, consistent: bool = True) -> Document:
        """A resource's GET document, or a collection's ``{"value", "nextLink"}``.

        ``consistent``: catch up with the store first (a cluster: read-your-writes across
        replicas); the publisher, told of every change it reads, passes False.
        """
        target = parse_path(path)
        if consistent:
            self.sync()
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

    def snapshot(
        self, *, consistent: bool = True, read_only: bool = False
    ) -> dict[str, builtins.list[Document]]:
        """Every resource as GET returns it (see ``openhnv.controller.northbound.snapshot``).

        Renders a copy of the state taken under the lock, so writers wait only for
        the copy, not for the rendering. ``read_only``: the documents share stored
        values instead of being deep copies (the compiler's input: it never changes it).
        """
        if consistent:
            self.sync()
        with self._lock:
            state = self.state.copy()
        return render_all(state, copy=not read_only)

    def revision(self) -> int:
        """The store revision the state holds."""
        return self._follower.applied

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
        if "resourceId" in body and not isinstance(body_id, str):
            raise bad_request("resourceId", f"must be a string, got {json_type(body_id)}")
        if body_id is not None and body_id.casefold() != target.resource_id.casefold():
            raise bad_request(
                "resourceId", f"{body_id!r} differs from the path's {target.resource_id!r}"
            )
        envelope: Document = {}
        for name in ENVELOPE_OBJECTS:
            value = body.get(name)
            if name in body and not isinstance(value, dict):
                raise bad_request(name, f"must be a JSON object, got {json_type(value)}")
            if value is not None:
                envelope[name] = value
        if "properties" not in body:
            raise bad_request("properties", "is required (a JSON object, {} for no property)")
        properties = parse_properties(target.kind, body["properties"])
        child: Document = {"resourceId": body_id or target.resource_id, "properties": properties}
        child.update(envelope)
        return self._write(
            lambda: plan_put(self.state, target, child, if_match, self.track_provisioning)
        )

    def delete(self, path: str, if_match: str | None = None) -> None:
        """Remove a resource (a child: its parent changes). 404 when absent."""
        target = parse_path(path)
        if target.is_collection:
            raise bad_request("", f"DELETE needs a resource path such as {target.ref}/{{id}}")
        self._write(lambda: plan_delete(self.state, target, if_match, self.track_provisioning))

    def bind_server(self, nic_ref: str, server_ref: str) -> bool:
        """Give the NIC at ``nic_ref`` the server ``server_ref`` if it has none.

        The northbound ``server`` reference stays authoritative: a NIC that already has
        one keeps it. True when the NIC was bound (a new etag; listeners are told).
        """
        target = parse_path(nic_ref).top

        def plan() -> Plan[bool]:
            old = self.state.top(target)
            if old is None or old["properties"].get("server"):
                return Plan(lambda _: False)
            new = copy_document(old)
            new["properties"]["server"] = {"resourceRef": server_ref}
            change = plan_change(self.state, target, old, new, self.track_provisioning)
            return Plan(lambda _: True, change.puts, change.deletes)

        return self._write(plan)

    def _write(self, plan: Callable[[], Plan[T]]) -> T:
        """Plan against the state and commit if nothing changed since; retry if something did.

        The first plan uses the state as it is (usually current: the follower streams
        every commit); a refusal, a no-op or a conflict on a shared store is decided again
        after catching up, so nothing is refused or skipped on a stale view. ApiError 503
        when conflicts keep winning for ``WRITE_BUDGET``.
        """
        deadline = time.monotonic() + WRITE_BUDGET
        current = not self.store.shared  # alone on the store: the state is always current
        with self._write_lock:
            while True:
                with self._lock:
                    try:
                        planned: Plan[T] | None = plan()
                    except ApiError:
                        if current:
                            raise
                        planned = None
                    base = self._follower.applied
                if planned is None or (planned.empty and not current):
                    self.sync()  # decide that on the newest state
                    current = True
                    continue
                if planned.empty:
                    with self._lock:
                        return planned.answer(self.state)
                try:
                    revision = self.store.commit(planned.puts, planned.deletes, if_revision=base)
                except StoreConflict:
                    if time.monotonic() > deadline:
                        raise ApiError(
                            SERVICE_UNAVAILABLE,
                            "ServiceUnavailable",
                            f"other writes kept changing the store for {WRITE_BUDGET:g} s; "
                            "nothing was changed, retry",
                        ) from None
                    self.sync()
                    current = True
                    continue
                with self._lock:
                    self._follower.apply_own(planned.puts, planned.deletes, revision, base)
                    return planned.answer(self.state)

    def _commit_states(self, puts: dict[str, Document], expect: dict[str, int], base: int) -> None:
        """Commit the publisher's own writes: compared per key, never announced."""
        revision = self.store.commit(puts, expect=expect)
        if self.store.shared:
            self._follower.catch_up(revision)
        else:  # this process is the only writer: nothing lies in between
            self._follower.apply_own(puts, (), revision, base)

    def set_provisioning_state(self, ref: str, state: str, if_etag: str | None = None) -> bool:
        """Set a top-level resource's provisioningState (the publisher's hook).

        With ``if_etag``, only while the resource still has that etag (a newer PUT has
        its own state to reach). True when the stored state is now ``state``.
        """
        return self.set_provisioning_states([(ref, state, if_etag)])[0]

    def set_provisioning_states(
        self, updates: Sequence[tuple[str, str, str | None]]
    ) -> builtins.list[bool]:
        """``set_provisioning_state`` for many ``(ref, state, if_etag)``: few store commits.

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
        with self._write_lock:
            for start in range(0, len(updates), STATE_BATCH):
                results += self._provision(updates[start : start + STATE_BATCH])
        return results

    def _provision(self, updates: Sequence[tuple[str, str, str | None]]) -> builtins.list[bool]:
        # Decided on the state as it is (the publisher compiled from it); a "no" (gone, or
        # another etag) is decided again after catching up, and a document another
        # replica changed meanwhile fails the per-key compare and is seen on the next pass.
        current = not self.store.shared
        while True:
            results: builtins.list[bool] = []
            puts: dict[str, Document] = {}
            expect: dict[str, int] = {}
            with self._lock:
                for ref, state, if_etag in updates:
                    target = parse_path(ref).top
                    key = resource_key(target)
                    old = puts.get(key) or self.state.top(target)
                    if old is None or (if_etag is not None and old["etag"] != if_etag):
                        results.append(False)
                        continue
                    results.append(True)
                    if old["properties"].get("provisioningState") != state:
                        new = copy_document(old)
                        new["properties"]["provisioningState"] = state
                        puts[key] = new
                        expect[key] = self._follower.mod_revision(key)
                base = self._follower.applied
            # A "yes" that writes nothing was only checked against this replica's copy:
            # confirm it on the store's state too, as a "no" is.
            unconfirmed = len(puts) < sum(results)
            if not current and (unconfirmed or not all(results)):
                self.sync()
                current = True
                continue
            if not puts:
                return results
            try:
                self._commit_states(puts, expect, base)
            except StoreConflict:  # a PUT changed one of them: decide again on the new state
                self.sync()
                current = True
                continue
            return results

    def set_configuration_state(self, ref: str, state: Document | None) -> None:
        """Show ``state`` as the resource's ``configurationState`` (None: the default).

        Not a northbound change: in memory, so a restarted controller starts from the
        default; in the store when controllers share it (every replica shows it).
        """
        self.set_configuration_states({ref: state})

    def configuration_states(self) -> dict[str, Document]:
        """Every configurationState shown now, by resource key (``/servers/host1``)."""
        with self._lock:
            return dict(self.state.configuration)

    def set_configuration_states(self, states: Mapping[str, Document | None]) -> None:
        """``set_configuration_state`` for many resources at once."""
        with self._lock:
            wanted: dict[ResourcePath, Document | None] = {}
            for ref, state in states.items():
                target = parse_path(ref).top
                if self.state.top(target) is not None:
                    wanted[self.state.canonical(target)] = state
            if not self.store.shared:
                for target, state in wanted.items():
                    if state is None:
                        self.state.configuration.pop(target.key, None)
                    else:
                        self.state.configuration[target.key] = copy_document(state)
                return
            shown = set(self.state.configuration)
        items = list(wanted.items())
        with self._write_lock:
            for start in range(0, len(items), STATE_BATCH):
                chunk = items[start : start + STATE_BATCH]
                puts = {status_key(t): copy_document(s) for t, s in chunk if s is not None}
                deletes = [status_key(t) for t, s in chunk if s is None and t.key in shown]
                if not puts and not deletes:
                    continue
                revision = self.store.commit(puts, deletes)
                self._follower.catch_up(revision)
