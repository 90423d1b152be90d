"""Header fields declared once: name, wire format and range, and the code every header shares.

In the spirit of dpkt's ``__hdr__``: a codec lists the fixed part of its header, in wire
order, as ``Field``s. A field is a whole ``struct`` item (``"B"``, ``"H"``, ``"I"``, or
``"4s"`` for 4 bytes), or, with ``bits``, a slice of one: consecutive bit fields of one
format share a word, most significant bits first, until the word is full. From that list
a ``Layout`` makes

- the ``struct`` that unpacks and packs every field in one call (``unpack``, ``pack``,
  bit fields split and joined; ``unpack`` first checks the header fits the buffer);
- the byte offset of every field (``offset``), for hot paths that read one field of a
  frame without parsing it;
- the range check of a header object's attributes (``checker``): an attribute named
  like a field holds an int in ``0..high`` (``high`` defaults to all ones of the field's
  width; a one-bit field may hold a bool) or bytes of the field's length; ``optional``
  ones may be None. A value out of range raises
  ``PacketError(header, 0, "<field> <value> is not in 0..<high>")``.

The three are made once per layout as straight-line Python (as ``dataclasses`` makes an
``__init__``), so a codec costs what hand-written ``struct`` code would.

Checks that tie fields together (an IHL and the options, a tag and its VLAN ID) stay in
the codec; the repetitive part does not.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from openhnv.packet.errors import PacketError, check_length, check_range, need

_BITS_PER_BYTE = 8


@dataclass(frozen=True, slots=True)
class Field:
    """One header field: a whole ``struct`` item, or ``bits`` of one (see the module doc)."""

    name: str
    fmt: str
    bits: int = 0
    high: int | None = None
    optional: bool = False


@dataclass(frozen=True, slots=True)
class _Item:
    """One ``struct`` item: a whole field, or a word split into bit fields."""

    fmt: str
    fields: tuple[Field, ...]
    offset: int

    @property
    def split(self) -> bool:
        return bool(self.fields[0].bits)


def _width(fmt: str) -> int:
    """Bits of an integer struct item."""
    return struct.calcsize("!" + fmt) * _BITS_PER_BYTE


def _items(header: str, fields: Iterable[Field]) -> list[_Item]:
    """Group the fields into struct items: consecutive bit fields fill one word (a
    declaration that does not is a ``PacketError`` when the codec's module loads)."""
    items: list[_Item] = []
    offset = 0
    word: list[Field] = []
    for f in fields:
        if f.bits:
            word.append(f)
            if word[0].fmt != f.fmt:
                raise PacketError(
                    header, 0, f"bit field {f.name} ({f.fmt}) in a {word[0].fmt} word"
                )
            used = sum(x.bits for x in word)
            if used > _width(f.fmt):
                raise PacketError(
                    header, 0, f"bit fields up to {f.name} overflow their {f.fmt} word"
                )
            if used == _width(f.fmt):
                items.append(_Item(f.fmt, tuple(word), offset))
                offset += struct.calcsize("!" + f.fmt)
                word = []
            continue
        if word:
            raise PacketError(header, 0, f"bit fields before {f.name} do not fill their word")
        items.append(_Item(f.fmt, (f,), offset))
        offset += struct.calcsize("!" + f.fmt)
    if word:
        raise PacketError(header, 0, f"bit fields up to {word[-1].name} do not fill their word")
    return items


class Layout:
    """The fixed part of one header, from its fields (see the module docstring)."""

    __slots__ = (
        "_bytes",
        "_ints",
        "_offsets",
        "fields",
        "header",
        "pack",
        "pack_source",
        "size",
        "struct",
        "unpack",
        "unpack_source",
    )  # fmt: skip

    def __init__(self, header: str, *fields: Field) -> None:
        self.header = header
        self.fields = fields
        items = _items(header, fields)
        self.struct = struct.Struct("!" + "".join(item.fmt for item in items))
        self.size = self.struct.size
        self._offsets = {f.name: item.offset for item in items for f in item.fields}
        ints: dict[str, tuple[str, int, bool]] = {}
        blobs: dict[str, tuple[str, int, bool]] = {}
        for f in fields:
            if f.fmt.endswith("s"):
                blobs[f.name] = (f.name, struct.calcsize("!" + f.fmt), f.optional)
            else:
                top = (1 << (f.bits or _width(f.fmt))) - 1
                ints[f.name] = (f.name, top if f.high is None else f.high, f.optional)
        self._ints = ints
        self._bytes = blobs
        # per struct item: its name in the generated code, and per field its expression
        words = [f"i{n}" for n in range(len(items))]
        parts: list[str] = []  # unpack: one expression per field
        joins: list[str] = []  # pack: one expression per struct item
        leaf = 0
        for word, item in zip(words, items, strict=True):
            if not item.split:
                parts.append(word)
                joins.append(f"f{leaf}")
                leaf += 1
                continue
            joined = []
            for (shift, mask), _ in zip(_shifts(item.fields), item.fields, strict=True):
                parts.append(f"{word} >> {shift} & {mask}" if shift else f"{word} & {mask}")
                joined.append(f"f{leaf} << {shift}" if shift else f"f{leaf}")
                leaf += 1
            joins.append(" | ".join(joined))
        targets = ", ".join(words) + ","
        self.unpack_source = (
            "def unpack(buf, offset=0):\n"
            f"    if offset < 0 or len(buf) - offset < {self.size}:\n"
            f"        need(buf, offset, {self.size}, header)\n"
            f"    {targets} = unpack_from(buf, offset)\n"
            f"    return ({', '.join(parts)},)\n"
        )
        self.pack_source = (
            f"def pack({', '.join(f'f{n}' for n in range(leaf))}):\n"
            f"    return pack_struct({', '.join(joins)})\n"
        )
        scope = {
            "need": need,
            "header": header,
            "unpack_from": self.struct.unpack_from,
            "pack_struct": self.struct.pack,
        }
        self.unpack: Callable[..., tuple[Any, ...]] = _compile(self.unpack_source, "unpack", scope)
        """``unpack(buf, offset=0)``: every field at ``offset`` of ``buf``, in declared order
        (``PacketError`` when the header does not fit the buffer)."""
        self.pack: Callable[..., bytes] = _compile(self.pack_source, "pack", scope)
        """``pack(*values)``: the header bytes of every field's value, in declared order."""

    def offset(self, name: str) -> int:
        """The byte offset of field ``name`` in the header (of its word, for bit fields)."""
        return self._offsets[name]

    def high(self, name: str) -> int:
        """The largest value integer field ``name`` may hold."""
        return self._ints[name][1]

    def checker(self, *names: str, also: tuple[Layout, ...] = ()) -> Callable[[object], None]:
        """The range check of the fields ``names`` (attributes of the header class), found
        in this layout or in those of ``also`` (the optional parts of the header): a
        function of the header object raising ``PacketError`` for the first field out of
        range."""
        ints: dict[str, tuple[str, int, bool]] = {}
        blobs: dict[str, tuple[str, int, bool]] = {}
        for layout in (*also[::-1], self):
            ints.update(layout._ints)
            blobs.update(layout._bytes)
        unknown = set(names) - ints.keys() - blobs.keys()
        if unknown:
            raise PacketError(self.header, 0, f"no fields {sorted(unknown)} to check")
        checked_ints = tuple(ints[n] for n in names if n in ints)
        checked_blobs = tuple(blobs[n] for n in names if n in blobs)
        tests = []
        for name, high, optional in checked_ints:
            v = f"obj.{name}"
            test = f"(type({v}) is int and 0 <= {v} <= {high})"
            if high == 1:
                test = f"(type({v}) is bool or {test})"
            tests.append(f"({v} is None or {test})" if optional else test)
        for name, length, optional in checked_blobs:
            v = f"obj.{name}"
            test = f"(type({v}) is bytes and len({v}) == {length})"
            tests.append(f"({v} is None or {test})" if optional else test)
        source = (
            "def check(obj):\n"
            f"    if {' and '.join(tests) or 'True'}:\n"
            "        return\n"
            "    explain(header, obj, ints, blobs)\n"
        )
        scope = {"explain": _explain, "header": self.header, "ints": checked_ints,
                 "blobs": checked_blobs}  # fmt: skip
        check: Callable[[object], None] = _compile(source, "check", scope)
        return check


def _compile(source: str, name: str, scope: dict[str, Any]) -> Any:
    """The function ``name`` that ``source`` defines, with ``scope`` as its globals."""
    exec(compile(source, f"<fields {name}>", "exec"), scope)
    return scope[name]


def _shifts(fields: tuple[Field, ...]) -> tuple[tuple[int, int], ...]:
    total = sum(f.bits for f in fields)
    out = []
    for f in fields:
        total -= f.bits
        out.append((total, (1 << f.bits) - 1))
    return tuple(out)


def _explain(
    header: str,
    obj: object,
    ints: tuple[tuple[str, int, bool], ...],
    blobs: tuple[tuple[str, int, bool], ...],
) -> None:
    """Raise ``PacketError`` naming the first attribute of ``obj`` out of range."""
    for name, high, optional in ints:
        value = getattr(obj, name)
        if (value is None and optional) or (high == 1 and type(value) is bool):
            continue
        check_range(header, name, value, 0, high)
    for name, length, optional in blobs:
        value = getattr(obj, name)
        if value is None and optional:
            continue
        check_length(header, name, value, (length,))
