"""The uplink scheduler's worker: states asked for while a plan is applied are
coalesced (the latest wins), failures are counted, ``close`` applies what waits."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping

from openhnv.vfp.qos import NO_QOS, QosSettings
from openhnv.vswitch.htb import UplinkPlan, UplinkScheduler
from openhnv.vswitch.qdisc import TcError
from openhnv.vswitch.uplink_planning import FAILED, UplinkPlanning, WantedTrees

WAIT = 5.0


class RecordingScheduler(UplinkScheduler):
    """A scheduler whose kernel is a list: each ``update`` records the ports it was
    given; the first one waits for ``release`` (a slow ``tc``); ``fail`` raises."""

    def __init__(self) -> None:
        super().__init__()
        self.updates: list[set[int]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail = False
        self.threads: set[str] = set()

    def update(
        self, uplinks: Iterable[str], ports: Mapping[int, QosSettings], flat_classes: bool
    ) -> dict[str, UplinkPlan]:
        self.threads.add(threading.current_thread().name)
        self.started.set()
        assert self.release.wait(WAIT)
        if self.fail:
            raise TcError("tc: RTNETLINK answers: No such device")
        self.updates.append(set(ports))
        return {}


def wanted(*ifindexes: int) -> WantedTrees:
    return WantedTrees({}, dict.fromkeys(ifindexes, NO_QOS), flat_classes=False)


def test_states_asked_for_during_a_plan_are_coalesced_into_the_latest() -> None:
    scheduler, counters = RecordingScheduler(), Counter[str]()
    entered: list[str] = []
    planning = UplinkPlanning(scheduler, lambda: entered.append("netns"), counters)
    planning.want(wanted(5))
    assert scheduler.started.wait(WAIT)  # the first plan is being applied
    for ports in range(6, 10):  # four ports come meanwhile, one at a time
        planning.want(wanted(*range(5, ports + 1)))
    scheduler.release.set()
    assert planning.idle(WAIT)
    assert scheduler.updates == [{5}, {5, 6, 7, 8, 9}]
    assert planning.plans_applied == 2
    assert entered == ["netns"]
    assert scheduler.threads == {"hnv-uplink-planning"}  # never the caller's thread
    assert counters[FAILED] == 0
    planning.close()


def test_a_failed_plan_is_counted_and_the_next_state_is_planned() -> None:
    scheduler, counters = RecordingScheduler(), Counter[str]()
    planning = UplinkPlanning(scheduler, lambda: None, counters)
    scheduler.release.set()
    scheduler.fail = True
    planning.want(wanted(5))
    assert planning.idle(WAIT)
    assert counters[FAILED] == 1
    scheduler.fail = False
    planning.want(wanted(5, 6))
    assert planning.idle(WAIT)
    assert scheduler.updates == [{5, 6}]
    planning.close()


def test_close_applies_the_state_still_waiting_then_takes_no_more() -> None:
    scheduler, counters = RecordingScheduler(), Counter[str]()
    planning = UplinkPlanning(scheduler, lambda: None, counters)
    planning.want(wanted(5))
    assert scheduler.started.wait(WAIT)
    planning.want(wanted(6))  # waits behind the first
    closing = threading.Thread(target=planning.close)
    closing.start()
    scheduler.release.set()
    closing.join(WAIT)
    assert scheduler.updates == [{5}, {6}]
    planning.want(wanted(7))  # after close: ignored
    assert planning.idle(WAIT)
    assert scheduler.updates == [{5}, {6}]


def test_a_namespace_it_cannot_enter_is_counted_and_nothing_is_applied() -> None:
    scheduler, counters = RecordingScheduler(), Counter[str]()
    scheduler.release.set()

    def cannot_enter() -> None:
        raise OSError(9, "setns: Bad file descriptor")

    planning = UplinkPlanning(scheduler, cannot_enter, counters)
    planning.want(wanted(5))
    assert planning.idle(WAIT)
    planning.close()
    assert (counters[FAILED], scheduler.updates) == (1, [])
