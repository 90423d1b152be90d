"""A controller's memory of the store: the ``State`` at a known store revision, kept current.

``StoreFollower`` loads the whole store once (``Store.read``) and from then on applies
changes in commit order, never out of it:

- its own commits, at once, when the commit compared the revision the follower was at
  (``apply_own``: nothing else can lie in between);
- everything else from the store: the follower thread (``start``) keeps a stream of
  commits open (``Store.follow``), so a replica's memory follows writes made by any other
  replica within milliseconds; ``sync`` reads the store's newest revision (a
  linearizable read in a cluster) and waits for the stream to get there (or replays
  from ``Store.watch`` itself), so a GET answers with every write acknowledged anywhere;
- after ``HistoryLost`` (the store compacted what a replay needs) it reloads everything
  and tells listeners what differs.

Changes are applied under ``lock``; the top-level refs whose northbound content changed
(not a provisioningState or configurationState alone: the publisher writes those) go to
``on_change``, which is called with the lock held and must only queue them.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Collection, Iterable, Mapping

from openhnv.controller.errors import StoreError
from openhnv.controller.northbound.state import State, top_ref
from openhnv.controller.northbound.store import Change, Document, HistoryLost, Store

log = logging.getLogger(__name__)

STREAM_WAIT = 1.0  # seconds a read waits for the follower's stream before replaying itself
RETRY_MIN, RETRY_MAX = 0.1, 2.0  # backoff while the store cannot be reached


class StoreFollower:
    """The state at ``applied``, the revision of the newest commit it holds."""

    def __init__(self, store: Store, on_change: Callable[[list[str]], None]) -> None:
        self.store = store
        self.on_change = on_change
        self.lock = threading.RLock()
        self._advanced = threading.Condition(self.lock)  # notified whenever applied moves
        self.state = State()
        self.applied = 0
        self.revisions: dict[str, int] = {}  # store key -> mod revision, as last applied
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.reload()

    # -- loading -----------------------------------------------------------------------
    def reload(self) -> None:
        """Read the whole store and hold exactly that; listeners hear what differs.

        The collector is paused while the documents are built (long-lived, acyclic:
        its scans of them would cost a quarter of the load at 100,000 NICs).
        """
        paused = gc.isenabled()
        gc.disable()
        try:
            listing = self.store.read()
            state = State.of(listing)
        finally:
            if paused:
                gc.enable()
        with self.lock:
            changed = _differences(self.state, state)
            if not self.store.shared:  # configurationState lives in memory only
                kept = self.state.configuration.items()
                state.configuration = {k: v for k, v in kept if k in state.docs}
            self.state = state
            self.applied = listing.revision
            self.revisions = {e.key: e.revision for e in listing.entries}
            if changed:
                self.on_change(changed)

    # -- applying ----------------------------------------------------------------------
    def apply(self, changes: Iterable[Change]) -> None:
        """Apply the changes newer than ``applied`` (older ones are already held)."""
        with self.lock:
            held = self.applied  # a commit's changes share its revision: compare to entry
            refs: list[str] = []
            for change in changes:
                if change.revision <= held:
                    continue
                ref = self.state.apply(change.key, change.value)
                if ref is not None:
                    refs.append(ref)
                if change.value is None:
                    self.revisions.pop(change.key, None)
                else:
                    self.revisions[change.key] = change.revision
                self._advance(change.revision)
            if refs:
                self.on_change(refs)

    def _advance(self, revision: int) -> None:
        self.applied = max(self.applied, revision)
        self._advanced.notify_all()

    def apply_own(
        self,
        puts: Mapping[str, Document],
        deletes: Collection[str],
        revision: int,
        base: int,
    ) -> list[str]:
        """Apply a commit of ours made at ``revision`` with ``if_revision=base`` (or by the
        store's only writer, whose previous commit was ``base``).

        The compare guarantees nothing else lies between ``base`` and ``revision``: if
        the follower is still at ``base`` the commit is applied as it is; if it moved on
        meanwhile (the follower thread replayed it), it catches up from the store.
        Returns the refs whose northbound content changed (listeners are told too).
        """
        with self.lock:
            if self.applied == base:
                changes = [Change(revision, k, v) for k, v in puts.items()]
                changes += [Change(revision, k, None) for k in deletes]
                refs = [r for r in (self.state.apply(c.key, c.value) for c in changes) if r]
                for change in changes:
                    if change.value is None:
                        self.revisions.pop(change.key, None)
                    else:
                        self.revisions[change.key] = revision
                self._advance(revision)
                if refs:
                    self.on_change(refs)
                return refs
        self.catch_up(revision)
        return []

    def mod_revision(self, key: str) -> int:
        """The mod revision of a stored key as held (0: absent)."""
        return self.revisions.get(key, 0)

    # -- catching up -------------------------------------------------------------------
    def catch_up(self, revision: int) -> None:
        """Hold at least every commit up to ``revision``."""
        while self.applied < revision:
            before = self.applied
            self._replay(0.0)
            if self.applied == before and self.store.revision() <= before:
                raise StoreError(f"store revision {revision} is not there to catch up to")

    def sync(self) -> None:
        """Catch up to the newest commit in the store (only needed when it is shared).

        The follower thread's stream usually brings it within milliseconds: wait for it
        a little before replaying from the store here.
        """
        if not self.store.shared:
            return
        target = self.store.revision()
        if self._thread is not None:
            with self.lock:
                self._advanced.wait_for(lambda: self.applied >= target, STREAM_WAIT)
        self.catch_up(target)

    def _replay(self, wait: float) -> None:
        try:
            changes = self.store.watch(self.applied, wait)
        except HistoryLost as err:
            log.warning("store history lost (%s): reloading everything", err)
            self.reload()
            return
        self.apply(changes)

    # -- the follower thread -----------------------------------------------------------
    def start(self) -> StoreFollower:
        """Follow commits of other writers in a thread (for a shared store)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._follow, name="store follower", daemon=True)
            self._thread.start()
        return self

    def stop(self, wait: bool = True) -> None:
        """Stop following (``wait``: until the thread is gone; close the store to end a
        stream that is waiting for commits)."""
        self._stopping.set()
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _follow(self) -> None:
        backoff = RETRY_MIN
        while not self._stopping.is_set():
            try:
                for changes in self.store.follow(self.applied):
                    self.apply(changes)
                    if self._stopping.is_set():
                        return
                backoff = RETRY_MIN
            except HistoryLost as err:
                log.warning("store history lost (%s): reloading everything", err)
                self.reload()
            except StoreError as err:
                if self._stopping.is_set():
                    return
                log.debug("store follower: %s; retrying in %.1f s", err, backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, RETRY_MAX)
            except Exception:  # a bug here must not stop following for good
                if self._stopping.is_set():
                    return  # the store was closed under the stream
                log.exception("store follower failed; reloading")
                self._stopping.wait(RETRY_MAX)
                try:
                    self.reload()
                except Exception:
                    log.exception("store follower: reload failed")


def _differences(old: State, new: State) -> list[str]:
    """Refs of the top-level resources whose northbound content differs."""
    refs: list[str] = []
    for key in old.docs.keys() | new.docs.keys():
        before, after = old.docs.get(key), new.docs.get(key)
        if before == after:
            continue
        doc = after if after is not None else before
        refs.append(top_ref(key, doc or {}))
    return sorted(refs)
