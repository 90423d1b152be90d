"""Rule classification: the highest-priority rule of a group that matches a packet.

``RuleIndex`` never scans every rule. Rules get a rank by (priority, rule_id); each
indexed field maps a packet value to the bit set (a Python int) of the rules whose
condition on that field can match it:

- exact fields (MACs, protocol, VSID, ethertype): a dict value -> bits, plus the bits of
  rules with no condition on the field;
- IP prefixes: one dict per prefix length present (network >> host bits -> bits), so a
  lookup costs one dict probe per distinct prefix length, as in tuple-space search;
- ports: a dict for single-port conditions; rules with real ranges stay candidates and
  are checked exactly.

The AND of the fields' sets holds every matching rule (and maybe a few more); the
candidates are then checked exactly in rank order and the first true match wins.
``matches`` is the plain definition, used by that check and by tests as the reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from openhnv.vfp.policy import Conditions, IPNetwork, PortRange, Rule


class PacketView(NamedTuple):
    """The fields rules look at, as the packet stands when a layer sees it (a named tuple:
    the slow path makes several per packet)."""

    src_mac: str
    dst_mac: str
    ethertype: int
    vsid: int
    family: int | None = None
    src_ip: int | None = None
    dst_ip: int | None = None
    protocol: int | None = None
    src_port: int | None = None
    dst_port: int | None = None


def _in_prefixes(
    family: int | None,
    address: int | None,
    prefixes: tuple[IPNetwork, ...] | None,
    excluded: tuple[IPNetwork, ...],
) -> bool:
    if prefixes is None and not excluded:
        return True
    if address is None or family is None:
        return False
    if prefixes is not None and not any(
        n.version == family and int(n.network_address) == address & int(n.netmask) for n in prefixes
    ):
        return False
    return not any(
        n.version == family and int(n.network_address) == address & int(n.netmask) for n in excluded
    )


def _in_ranges(port: int | None, ranges: tuple[PortRange, ...] | None) -> bool:
    if ranges is None:
        return True
    return port is not None and any(lo <= port <= hi for lo, hi in ranges)


def matches(c: Conditions, p: PacketView) -> bool:
    """Whether ``p`` meets every condition of ``c`` (the definition; no index)."""
    return (
        (c.src_macs is None or p.src_mac in c.src_macs)
        and (c.dst_macs is None or p.dst_mac in c.dst_macs)
        and (c.ethertypes is None or p.ethertype in c.ethertypes)
        and (c.vsids is None or p.vsid in c.vsids)
        and (c.protocols is None or p.protocol in c.protocols)
        and _in_prefixes(p.family, p.src_ip, c.src_prefixes, c.src_excluded)
        and _in_prefixes(p.family, p.dst_ip, c.dst_prefixes, c.dst_excluded)
        and _in_ranges(p.src_port, c.src_ports)
        and _in_ranges(p.dst_port, c.dst_ports)
    )


def rank_order(rules: Iterable[Rule]) -> list[Rule]:
    """Rules in evaluation order: priority, then rule_id."""
    return sorted(rules, key=lambda r: (r.priority, r.rule_id))


def linear_classify(rules: Iterable[Rule], p: PacketView) -> Rule | None:
    """The first matching rule by a scan of every rule (reference for tests)."""
    for rule in rank_order(rules):
        if matches(rule.conditions, p):
            return rule
    return None


def _bits(indices: Sequence[int], size: int) -> int:
    buf = bytearray(size // 8 + 1)
    for i in indices:
        buf[i >> 3] |= 1 << (i & 7)
    return int.from_bytes(buf, "little")


class _ExactField:
    __slots__ = ("any", "table")

    def __init__(self, values: list[Iterable[object] | None], size: int) -> None:
        free: list[int] = []
        by_value: dict[object, list[int]] = {}
        for i, vals in enumerate(values):
            if vals is None:
                free.append(i)
            else:
                for v in vals:
                    by_value.setdefault(v, []).append(i)
        self.any = _bits(free, size)
        self.table = {v: _bits(ix, size) for v, ix in by_value.items()}

    def lookup(self, value: object) -> int:
        return self.any | self.table.get(value, 0)


class _PrefixField:
    __slots__ = ("any", "lengths")

    def __init__(self, values: list[tuple[IPNetwork, ...] | None], size: int) -> None:
        free: list[int] = []
        by_len: dict[tuple[int, int], dict[int, list[int]]] = {}
        for i, nets in enumerate(values):
            if nets is None:
                free.append(i)
                continue
            for n in nets:
                host_bits = n.max_prefixlen - n.prefixlen
                table = by_len.setdefault((n.version, host_bits), {})
                table.setdefault(int(n.network_address) >> host_bits, []).append(i)
        self.any = _bits(free, size)
        self.lengths: dict[int, list[tuple[int, dict[int, int]]]] = {4: [], 6: []}
        for (family, host_bits), table in sorted(by_len.items()):
            bits = {k: _bits(ix, size) for k, ix in table.items()}
            self.lengths[family].append((host_bits, bits))

    def lookup(self, family: int | None, address: int | None) -> int:
        bits = self.any
        if address is None or family is None:
            return bits
        for host_bits, table in self.lengths[family]:
            bits |= table.get(address >> host_bits, 0)
        return bits


class _PortField:
    __slots__ = ("any", "table")

    def __init__(self, values: list[tuple[PortRange, ...] | None], size: int) -> None:
        free: list[int] = []
        by_port: dict[int, list[int]] = {}
        for i, ranges in enumerate(values):
            if ranges is None or any(lo != hi for lo, hi in ranges):
                free.append(i)  # no condition, or a real range: checked exactly later
            else:
                for lo, _ in ranges:
                    by_port.setdefault(lo, []).append(i)
        self.any = _bits(free, size)
        self.table = {v: _bits(ix, size) for v, ix in by_port.items()}

    def lookup(self, port: int | None) -> int:
        return self.any | self.table.get(port, 0) if port is not None else self.any


def _ranged(c: Conditions) -> bool:
    return any(lo != hi for lo, hi in (*(c.src_ports or ()), *(c.dst_ports or ())))


class RuleIndex:
    """The rules of one group, indexed for ``classify``; rebuilt whole when they change."""

    __slots__ = ("_check", "_exact", "_full", "_ports", "_prefixes", "rules")

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = rank_order(rules)
        n = len(self.rules)
        self._full = (1 << n) - 1
        cs = [r.conditions for r in self.rules]
        # the index is exact except for excluded prefixes and real port ranges
        self._check = _bits(
            [i for i, x in enumerate(cs) if x.src_excluded or x.dst_excluded or _ranged(x)], n
        )
        exact = {
            "src_mac": [c.src_macs for c in cs],
            "dst_mac": [c.dst_macs for c in cs],
            "ethertype": [c.ethertypes for c in cs],
            "vsid": [c.vsids for c in cs],
            "protocol": [c.protocols for c in cs],
        }
        full = self._full
        self._exact: list[tuple[str, _ExactField]] = [
            (name, f)
            for name, vals in exact.items()
            if (f := _ExactField(vals, n)).any != full  # type: ignore[arg-type]
        ]
        pre = {"src": [c.src_prefixes for c in cs], "dst": [c.dst_prefixes for c in cs]}
        self._prefixes: list[tuple[str, _PrefixField]] = [
            (name, pf) for name, vals in pre.items() if (pf := _PrefixField(vals, n)).any != full
        ]
        ports = {"src_port": [c.src_ports for c in cs], "dst_port": [c.dst_ports for c in cs]}
        self._ports: list[tuple[str, _PortField]] = [
            (name, qf) for name, vals in ports.items() if (qf := _PortField(vals, n)).any != full
        ]

    def candidates(self, p: PacketView) -> int:
        """The bit set of rules that may match ``p`` (every rule that does is in it)."""
        bits = self._full
        for name, ef in self._exact:
            bits &= ef.lookup(getattr(p, name))
            if not bits:
                return 0
        for name, pf in self._prefixes:
            bits &= pf.lookup(p.family, p.src_ip if name == "src" else p.dst_ip)
            if not bits:
                return 0
        for name, qf in self._ports:
            bits &= qf.lookup(getattr(p, name))
            if not bits:
                return 0
        return bits

    def classify(self, p: PacketView) -> Rule | None:
        """The highest-priority rule that matches ``p``, or None."""
        bits = self.candidates(p)
        rules, check = self.rules, self._check
        while bits:
            low = bits & -bits
            rule = rules[low.bit_length() - 1]
            if not low & check or matches(rule.conditions, p):
                return rule
            bits ^= low
        return None
