"""The publisher's bookkeeping of which NICs wait for which hosts' commits."""

from __future__ import annotations

from openhnv.controller.southbound.provisioning import Pending, Waiting


def test_a_nic_is_done_when_every_host_reached_its_sequence() -> None:
    waiting = Waiting()
    waiting.add(
        "/networkinterfaces/a", Pending("/networkInterfaces/a", 'W/"1"', {"h1": 3, "h2": 2})
    )
    waiting.add("/networkinterfaces/b", Pending("/networkInterfaces/b", None, {"h2": 4}))
    assert waiting.done(["h1", "h2"], {"h1": 3, "h2": 1}) == []
    finished = waiting.done(["h2"], {"h1": 3, "h2": 2})
    assert [p.ref for p in finished] == ["/networkInterfaces/a"]
    assert "/networkinterfaces/a" not in waiting
    assert len(waiting) == 1
    assert waiting.done(["h2"], {"h2": 5})[0].ref == "/networkInterfaces/b"
    assert len(waiting) == 0


def test_only_nics_of_the_hosts_that_moved_are_looked_at() -> None:
    waiting = Waiting()
    waiting.add("k", Pending("/networkInterfaces/k", None, {"h1": 1}))
    assert waiting.done(["h2"], {"h1": 9}) == []  # h1's commit was not reported yet
    assert [p.ref for p in waiting.done(["h1"], {"h1": 9})] == ["/networkInterfaces/k"]


def test_a_new_wait_replaces_the_old_one() -> None:
    waiting = Waiting()
    waiting.add("k", Pending("/networkInterfaces/k", None, {"h1": 1}))
    waiting.add("k", Pending("/networkInterfaces/k", None, {"h2": 5}))
    assert waiting.done(["h1"], {"h1": 9}) == []
    assert len(waiting.done(["h2"], {"h2": 5})) == 1
    waiting.add("k", Pending("/networkInterfaces/k", None, {"h3": 1}))
    waiting.drop("k")
    waiting.drop("absent")
    assert waiting.done(["h3"], {"h3": 1}) == []
    assert list(waiting.keys()) == []
