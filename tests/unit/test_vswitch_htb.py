"""The uplink scheduler's plan: which htb classes reservations, caps and the link make
(a pure function: no ``tc`` runs here), and where the link's capacity comes from."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openhnv.vfp.qos import NO_QOS, QosSettings
from openhnv.vswitch.htb import (
    DEFAULT_CLASS,
    DEFAULT_LINK_MBPS,
    FLAT,
    LINK_CLASS,
    HtbClass,
    UplinkScheduler,
    link_mbps_of,
    plan_uplink,
)
from openhnv.vswitch.qdisc import MAX_CLASS, TcError, class_priority

RESERVED_60 = QosSettings(outbound_reserved_mbps=60)
CAPPED_30 = QosSettings(outbound_max_mbps=30)


def test_without_reservations_or_a_configured_link_the_tree_is_flat_caps_only() -> None:
    plan = plan_uplink(10_000, {5: CAPPED_30, 6: QosSettings(inbound_max_mbps=9), 7: NO_QOS})
    assert plan.link_kbit is None  # no link class: the rest takes htb's direct queue
    assert plan.classes == (HtbClass(5, 0, 30_000, 30_000),)  # inbound caps are the veth's
    assert plan_uplink(10_000, {6: NO_QOS, 7: NO_QOS}) == FLAT  # nothing to pay for


def test_a_reservation_gets_its_rate_and_borrows_up_to_the_link() -> None:
    plan = plan_uplink(100, {5: RESERVED_60, 6: CAPPED_30})
    assert plan.classes == (
        HtbClass(LINK_CLASS, 0, 100_000, 100_000),
        HtbClass(5, LINK_CLASS, 60_000, 100_000),  # reserved, no cap: ceil = the link
        HtbClass(6, LINK_CLASS, 30_000, 30_000),  # capped, no reservation: its share, capped
        HtbClass(DEFAULT_CLASS, LINK_CLASS, 10_000, 100_000),  # what is left, for the rest
    )
    assert not plan.oversubscribed
    assert plan.of_port(5) == HtbClass(5, LINK_CLASS, 60_000, 100_000)


def test_a_configured_link_is_shaped_even_with_nothing_reserved() -> None:
    plan = plan_uplink(100, {5: NO_QOS, 6: NO_QOS}, configured=True)
    assert plan.classes == (HtbClass(LINK_CLASS, 0, 100_000, 100_000),
                            HtbClass(DEFAULT_CLASS, LINK_CLASS, 100_000, 100_000))  # fmt: skip


def test_beside_a_reservation_every_unreserved_port_has_a_class_and_an_equal_share() -> None:
    plan = plan_uplink(100, {5: RESERVED_60, 6: NO_QOS, 7: NO_QOS, 8: CAPPED_30})
    assert plan.classes == (
        HtbClass(LINK_CLASS, 0, 100_000, 100_000),
        HtbClass(5, LINK_CLASS, 60_000, 100_000),
        HtbClass(6, LINK_CLASS, 13_000, 100_000),  # (100 - 60 - the default's 1) / 3
        HtbClass(7, LINK_CLASS, 13_000, 100_000),
        HtbClass(8, LINK_CLASS, 13_000, 30_000),  # capped: its share, up to its cap
        HtbClass(DEFAULT_CLASS, LINK_CLASS, 1_000, 100_000),  # the host's own frames
    )
    assert plan.reserved_kbit == plan.granted_kbit == 60_000
    assert (plan.sharing, plan.share_kbit) == (3, 13_000)
    scheduler = UplinkScheduler()
    scheduler.applied["up0"] = plan
    status = scheduler.status()["up0"]
    assert isinstance(status, dict)
    shown = (status["classes"], status["fair_share_ports"], status["fair_share_mbps"])
    assert shown == (6, 3, 13.0)
    assert scheduler.priority_of(6) == class_priority(6)  # the Python switch sends in it


def test_a_port_coming_or_going_moves_only_the_unreserved_shares() -> None:
    before = plan_uplink(100, {5: RESERVED_60, 6: NO_QOS})
    after = plan_uplink(100, {5: RESERVED_60, 6: NO_QOS, 7: NO_QOS})
    assert before.of_port(5) == after.of_port(5)
    assert before.of_port(6) == HtbClass(6, LINK_CLASS, 39_000, 100_000)
    assert after.of_port(6) == HtbClass(6, LINK_CLASS, 19_500, 100_000)


def test_an_unreserved_port_whose_ifindex_is_no_class_minor_takes_the_default_class() -> None:
    plan = plan_uplink(100, {5: RESERVED_60, MAX_CLASS + 1: NO_QOS})
    assert [c.minor for c in plan.classes] == [LINK_CLASS, 5, DEFAULT_CLASS]


def test_a_reservation_within_a_cap_keeps_both() -> None:
    plan = plan_uplink(100, {5: QosSettings(outbound_max_mbps=80, outbound_reserved_mbps=60)})
    assert plan.of_port(5) == HtbClass(5, LINK_CLASS, 60_000, 80_000)


def test_oversubscribed_reservations_are_scaled_in_proportion_and_said() -> None:
    ports = {5: QosSettings(outbound_reserved_mbps=80), 6: QosSettings(outbound_reserved_mbps=40)}
    plan = plan_uplink(100, ports)
    assert plan.oversubscribed
    assert (plan.reserved_kbit, plan.granted_kbit) == (120_000, 96_999)  # a floor each apart
    assert [c.rate_kbit for c in plan.classes] == [100_000, 64_666, 32_333, 3_001]
    assert plan == plan_uplink(100, dict(reversed(ports.items())))  # the order says nothing


def test_an_unknown_link_is_the_default_capacity() -> None:
    plan = plan_uplink(None, {5: RESERVED_60})
    assert plan.link_kbit == DEFAULT_LINK_MBPS * 1000


@pytest.mark.parametrize("ifindex", [LINK_CLASS, 0, MAX_CLASS + 1])
def test_a_port_whose_ifindex_is_no_class_minor_is_refused(ifindex: int) -> None:
    with pytest.raises(TcError, match=str(ifindex)):
        plan_uplink(100, {ifindex: RESERVED_60})


def settings_of(cap: int, share: int) -> QosSettings:
    """A cap (0: none) and a reservation of ``share`` % of it (or share * 10 Mbit/s)."""
    reserved = cap * share // 100 if cap else share * 10
    return QosSettings(outbound_max_mbps=cap, outbound_reserved_mbps=reserved)


@given(
    link=st.integers(1, 100_000),
    ports=st.dictionaries(
        st.integers(2, MAX_CLASS),
        st.builds(settings_of, st.integers(0, 1000), st.integers(0, 100)),
        max_size=8,
    ),
    configured=st.booleans(),
)
def test_the_guarantees_never_exceed_the_link_and_each_class_fits_its_ceil(
    link: int, ports: dict[int, QosSettings], configured: bool
) -> None:
    plan = plan_uplink(link, ports, configured)
    link_kbit = link * 1000
    children = [c for c in plan.classes if c.minor != LINK_CLASS]
    for c in children:
        assert 0 < c.rate_kbit <= c.ceil_kbit
        assert plan.link_kbit is None or c.ceil_kbit <= link_kbit  # flat: the caps alone
    if plan.link_kbit is not None and link >= 2 * (len(ports) + 1):  # room for every floor
        assert sum(c.rate_kbit for c in children) <= link_kbit
    scheduled = {i for i, s in ports.items() if s.outbound_max_mbps or s.outbound_reserved_mbps}
    if plan.link_kbit is not None and scheduled:  # every port has its class: fair between
        assert {c.minor for c in children} == set(ports) | {DEFAULT_CLASS}
        shares = {c.rate_kbit for c in children
                  if c.minor in ports and not ports[c.minor].outbound_reserved_mbps
                  and c.rate_kbit < c.ceil_kbit}  # fmt: skip
        assert len(shares) <= 1  # the unreserved ports below their caps: equal rates
    else:  # flat, or nothing reserved or capped: classes for the capped ports only
        assert {c.minor for c in children} - {DEFAULT_CLASS} == scheduled


def test_the_links_capacity_is_the_configured_one_else_the_devices_speed(tmp_path: Path) -> None:
    (tmp_path / "up0").mkdir()
    (tmp_path / "up0" / "speed").write_text("10000\n")
    (tmp_path / "up1").mkdir()
    (tmp_path / "up1" / "speed").write_text("-1\n")  # a device without a link speed
    assert link_mbps_of("up0", 100, tmp_path) == 100
    assert link_mbps_of("up0", None, tmp_path) == 10_000
    assert link_mbps_of("up1", None, tmp_path) == DEFAULT_LINK_MBPS
    assert link_mbps_of("up9", None, tmp_path) == DEFAULT_LINK_MBPS  # no such device


def test_the_python_switch_classifies_only_where_the_uplink_is_scheduled() -> None:
    scheduler = UplinkScheduler()  # (its plans set here: update would run tc)
    scheduler.applied["up0"] = plan_uplink(10_000, {5: CAPPED_30})  # flat
    assert scheduler.priority_of(5) == 0  # flat: its frames bypass the qdisc, policed
    assert not scheduler.scheduling("up0")
    scheduler.applied["up0"] = plan_uplink(100, {5: CAPPED_30, 6: RESERVED_60})
    assert scheduler.scheduling("up0")
    assert (scheduler.priority_of(5), scheduler.priority_of(6)) == (0x10005, class_priority(6))
    assert scheduler.priority_of(7) == 0  # no class: the default one
    assert scheduler.port_class(6) == {
        "class": "1:6",
        "rate_mbps": 60.0,
        "ceil_mbps": 100.0,
        "uplink": "up0",
    }
    assert scheduler.status()["up0"] == {"link_mbps": 100, "reserved_mbps": 60.0,
                                         "granted_mbps": 60.0, "classes": 4,
                                         "fair_share_ports": 1,  # port 5: capped at 30
                                         "fair_share_mbps": 39.0}  # fmt: skip
