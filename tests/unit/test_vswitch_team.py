"""Team failover's placement: members and their carrier in, where each PA lives out."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from openhnv.vswitch.team import Placement, member_order, moves, place

HOMES = {"192.168.1.10": "up0", "192.168.1.11": "up1"}


def members(placement: dict[str, Placement]) -> dict[str, str]:
    return {a: p.member for a, p in placement.items()}


def test_with_carrier_everywhere_every_pa_is_home() -> None:
    placed = place(HOMES, {"up0": True, "up1": True})
    assert members(placed) == HOMES
    assert not any(p.moved for p in placed.values())


def test_a_member_never_reported_counts_as_up() -> None:
    assert members(place(HOMES, {})) == HOMES


def test_the_pa_of_a_member_without_carrier_moves_to_the_survivor() -> None:
    placed = place(HOMES, {"up0": False, "up1": True})
    assert placed["192.168.1.10"] == Placement("192.168.1.10", "up0", "up1")
    assert placed["192.168.1.10"].moved
    assert not placed["192.168.1.11"].moved


def test_when_the_member_returns_its_pa_goes_home() -> None:
    moved = place(HOMES, {"up0": False})
    back = place(HOMES, {"up0": True}, members(moved))
    assert members(back) == HOMES
    assert moves(moved, back) == ["192.168.1.10"]


def test_moved_pas_spread_over_the_least_loaded_survivors() -> None:
    homes = {"10.0.0.1": "up0", "10.0.0.2": "up1", "10.0.0.3": "up2", "10.0.0.4": "up3"}
    placed = place(homes, {"up0": False, "up1": False})
    assert members(placed) == {"10.0.0.1": "up2", "10.0.0.2": "up3",
                               "10.0.0.3": "up2", "10.0.0.4": "up3"}  # fmt: skip


def test_a_moved_pa_stays_where_it_is_while_that_member_has_carrier() -> None:
    homes = {"10.0.0.1": "up0", "10.0.0.2": "up1", "10.0.0.3": "up2"}
    placed = place(homes, {"up0": False}, {"10.0.0.1": "up2"})
    assert placed["10.0.0.1"].member == "up2"  # not to up1, though it is as loaded


def test_with_no_member_left_the_pas_stay_home() -> None:
    assert members(place(HOMES, {"up0": False, "up1": False})) == HOMES


def test_a_member_without_a_pa_of_its_own_can_carry_one() -> None:
    placed = place({"10.0.0.1": "up0"}, {"up0": False}, members=["up0", "up1"])
    assert placed["10.0.0.1"].member == "up1"


def test_members_sort_by_their_number() -> None:
    assert sorted(["up10", "up2", "up1"], key=member_order) == ["up1", "up2", "up10"]


@given(st.dictionaries(st.sampled_from(["up0", "up1", "up2", "up3"]), st.booleans()))
def test_a_pa_lives_on_a_member_with_carrier_whenever_one_exists(carrier: dict[str, bool]) -> None:
    homes = {f"10.0.0.{i}": f"up{i}" for i in range(4)}
    placed = place(homes, carrier)
    alive = {m for m in ("up0", "up1", "up2", "up3") if carrier.get(m, True)}
    for p in placed.values():
        assert p.member in alive if alive else p.member == p.home
        assert p.moved == (p.home not in alive and bool(alive))
