"""Header fields declared once: one struct, the offsets, the range checks."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openhnv.packet.errors import PacketError
from openhnv.packet.fields import Field, Layout

# A made-up header with every kind of field: a split byte, a whole word, a split word
# spanning three fields, and bytes.
DEMO = Layout(
    "demo",
    Field("version", "B", bits=4),
    Field("length", "B", bits=4),
    Field("port", "H"),
    Field("flag", "I", bits=1),
    Field("kind", "I", bits=7, high=100),
    Field("label", "I", bits=24, optional=True),
    Field("address", "4s"),
)


@dataclass(frozen=True, slots=True)
class Demo:
    length: int
    port: int
    flag: bool
    kind: int
    label: int | None
    address: bytes

    def __post_init__(self) -> None:
        _check(self)


_check = DEMO.checker("length", "port", "flag", "kind", "label", "address")
RAW = bytes.fromhex(
    "45"  # version 4, length 5
    "1f90"  # port 8080
    "85abcdef"  # flag 1, kind 5, label 0xabcdef
    "0a000001"  # address 10.0.0.1
)


def test_known_answer_unpack_and_pack() -> None:
    assert DEMO.size == 11
    values = DEMO.unpack(RAW)
    assert values == (4, 5, 8080, 1, 5, 0xABCDEF, bytes([10, 0, 0, 1]))
    assert DEMO.pack(*values) == RAW
    assert DEMO.unpack(b"xx" + RAW, 2) == values


def test_offsets_and_highs_come_from_the_declaration() -> None:
    assert [DEMO.offset(n) for n in ("version", "length", "port", "label", "address")] == [
        0,
        0,
        1,
        3,
        7,
    ]
    assert (DEMO.high("length"), DEMO.high("port"), DEMO.high("kind"), DEMO.high("label")) == (
        15,
        0xFFFF,
        100,
        0xFFFFFF,
    )


@given(
    st.tuples(
        st.integers(0, 15),
        st.integers(0, 15),
        st.integers(0, 0xFFFF),
        st.integers(0, 1),
        st.integers(0, 127),
        st.integers(0, 0xFFFFFF),
        st.binary(min_size=4, max_size=4),
    )
)
def test_round_trip(values: tuple[object, ...]) -> None:
    assert DEMO.unpack(DEMO.pack(*values)) == values


@pytest.mark.parametrize("cut", [0, 5, 10])
def test_a_short_buffer_is_a_packet_error_naming_the_header(cut: int) -> None:
    with pytest.raises(
        PacketError, match=rf"^demo at offset 0: truncated: needs 11 bytes, only {cut}"
    ):
        DEMO.unpack(RAW[:cut])
    with pytest.raises(PacketError, match=r"^demo at offset -1: negative offset"):
        DEMO.unpack(RAW, -1)


def test_checks_accept_what_fits() -> None:
    Demo(15, 0xFFFF, True, 100, None, bytes(4))
    Demo(0, 0, False, 0, 0xFFFFFF, bytes(4))


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("length", 16, "length 16 is not in 0..15"),
        ("port", -1, "port -1 is not in 0..65535"),
        ("port", True, "port True is not in 0..65535"),
        ("port", None, "port None is not in 0..65535"),
        ("flag", 2, "flag 2 is not in 0..1"),
        ("kind", 101, "kind 101 is not in 0..100"),
        ("label", 1 << 24, "label 16777216 is not in 0..16777215"),
        ("address", b"\x00", r"address b'\\x00' is not 4 bytes"),
        ("address", None, "address None is not 4 bytes"),
    ],
)
def test_checks_name_the_field_and_value(field: str, value: object, reason: str) -> None:
    fields: dict[str, object] = {
        "length": 5, "port": 1, "flag": False, "kind": 1, "label": None, "address": bytes(4),
    }  # fmt: skip
    fields[field] = value
    with pytest.raises(PacketError, match=rf"^demo at offset 0: {reason}$"):
        Demo(**fields)  # type: ignore[arg-type]


def test_bad_declarations_are_refused() -> None:
    with pytest.raises(PacketError, match=r"^bad at offset 0: bit fields before b do not fill"):
        Layout("bad", Field("a", "B", bits=3), Field("b", "H"))
    with pytest.raises(PacketError, match="overflow"):
        Layout("bad", Field("a", "B", bits=5), Field("b", "B", bits=5))
    with pytest.raises(PacketError, match="nope"):
        DEMO.checker("nope")
