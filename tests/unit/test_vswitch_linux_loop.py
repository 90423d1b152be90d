"""The Linux driver's polling loop (``PollLoop``) on pipes: a ready socket's handler runs
and what it queued is sent after it, posted work runs on the loop thread, a failing
handler is counted and the loop goes on, a paused ring is polled again afterwards."""

from __future__ import annotations

import functools
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import cast

import pytest

from openhnv.testing.polling import eventually
from openhnv.vswitch.linux_loop import PollLoop
from openhnv.vswitch.ring import PacketRing


class Ring:
    """Stands in for a PacketRing: records what was flushed."""

    def __init__(self) -> None:
        self.queued: list[bytes] = []
        self.sent: list[bytes] = []

    def flush(self) -> None:
        self.sent += self.queued
        self.queued.clear()


class Pipe:
    """A pipe whose read end a handler drains, one byte at a time."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.got: list[bytes] = []

    def send(self, data: bytes) -> None:
        os.write(self.write_fd, data)

    def read_one(self) -> bytes:
        got = os.read(self.read_fd, 1)
        self.got.append(got)
        return got

    def close(self) -> None:
        os.close(self.read_fd)
        os.close(self.write_fd)


@pytest.fixture
def served() -> Iterator[tuple[PollLoop, set[int], Counter[str]]]:
    """A loop served by a thread of its own (stopped and closed afterwards)."""
    counters: Counter[str] = Counter()
    pausable: set[int] = set()
    loop = PollLoop(counters, pausable)
    loop.running = True
    loop.start()
    thread = threading.Thread(target=loop.serve, args=(lambda now: None, lambda: None))
    thread.start()
    yield loop, pausable, counters
    loop.stop()
    thread.join(10.0)
    loop.running = False
    loop.close()


def _on_loop(loop: PollLoop, work: Callable[[], None]) -> None:
    done = threading.Event()

    def run() -> None:
        work()
        done.set()

    loop.post(run)
    assert done.wait(10.0), "the posted work ran"


def test_a_ready_socket_s_handler_runs_and_what_it_queued_is_sent_after_it(
    served: tuple[PollLoop, set[int], Counter[str]],
) -> None:
    loop, _pausable, _counters = served
    pipe, ring = Pipe(), Ring()
    seen_unsent: list[bool] = []

    def handler() -> None:
        ring.queued.append(pipe.read_one())
        loop.dirty.add(cast(PacketRing, ring))
        seen_unsent.append(ring.sent == [])

    _on_loop(loop, lambda: loop.watch(pipe.read_fd, handler))
    pipe.send(b"a")
    eventually(lambda: ring.sent == [b"a"], "the queued frame sent")
    assert seen_unsent == [True]  # queued in the handler, sent once it returned
    pipe.send(b"b")
    eventually(lambda: ring.sent == [b"a", b"b"], "the second one")
    _on_loop(loop, lambda: loop.unwatch(pipe.read_fd))
    pipe.close()


def test_work_posted_from_another_thread_runs_on_the_loop_thread(
    served: tuple[PollLoop, set[int], Counter[str]],
) -> None:
    loop, _pausable, _counters = served
    where: list[int] = []
    _on_loop(loop, lambda: where.append(threading.get_ident()))
    assert where != [threading.get_ident()]


def test_a_failing_handler_is_counted_and_the_loop_goes_on(
    served: tuple[PollLoop, set[int], Counter[str]],
) -> None:
    loop, _pausable, counters = served
    pipe = Pipe()

    def handler() -> None:
        if pipe.read_one() == b"!":
            raise RuntimeError("a broken frame")

    _on_loop(loop, lambda: loop.watch(pipe.read_fd, handler))
    pipe.send(b"!")
    eventually(lambda: counters["loop_errors"] == 1, "the error counted")
    pipe.send(b"x")
    eventually(lambda: pipe.got == [b"!", b"x"], "the loop still reads")
    _on_loop(loop, lambda: loop.unwatch(pipe.read_fd))
    pipe.close()


def test_a_paused_ring_is_read_again_once_its_pause_is_over(
    served: tuple[PollLoop, set[int], Counter[str]],
) -> None:
    loop, pausable, counters = served
    port, other = Pipe(), Pipe()
    pausable.add(port.read_fd)  # a VM port's ring may pause; the other socket may not

    def read_port() -> None:
        port.read_one()
        loop.pause(port.read_fd, 0.05)

    def read_other() -> None:
        other.read_one()
        loop.pause(other.read_fd, 3600.0)  # not pausable: nothing happens

    _on_loop(loop, lambda: loop.watch(port.read_fd, read_port))
    _on_loop(loop, lambda: loop.watch(other.read_fd, read_other))
    port.send(b"12")
    other.send(b"12")
    eventually(lambda: port.got == [b"1", b"2"], "the port's ring read after its pause")
    eventually(lambda: other.got == [b"1", b"2"], "the other socket read on")
    assert counters["port_pauses"] == 2  # each read of the port paused it
    for pipe in (port, other):
        _on_loop(loop, functools.partial(loop.unwatch, pipe.read_fd))
        pipe.close()
