"""The fast path's map keys and values, mirrored from ``openhnv/vswitch/bpf/hnv.h``.

Each C struct is declared here once, as a frozen dataclass whose fields carry their
``struct`` format (``cfield``); ``CStruct.pack``/``unpack`` turn it into the exact
bytes the kernel map holds (native byte order, no implicit padding: pads are
declared). ``c_layout`` gives each field's offset and size, which
``FastPath.load`` and the unit tests compare with the object's BTF, so a Python
mirror that drifts from the C (or a stale object) is refused, never misread.

Byte order follows the C: addresses are wire bytes (``__be32``, MACs), every integer
(ports, VSID, TCI, lengths, the partial checksum) is in host order.

    struct hnv_tuple       dst_mac[6] src_mac[6] src_ip[4] dst_ip[4] src_port:u16
                           dst_port:u16 protocol:u8 pad[3]                   28 bytes
    struct hnv_port_key    ifindex:u32 flow                                   32 bytes
    struct hnv_uplink_key  remote_pa[4] local_pa[4] vsid:u32 vlan_id:u16
                           encap:u8 pad flow                                  44 bytes
    struct hnv_flow        action flags encap header_len:u8 ifindex:u32 mtu
                           vlan_tci csum_partial entropy:u16 gens[2]{slot,
                           generation:u32} dst_mac[6] src_mac[6] header[52]
                           stats{packets bytes last_used_ns:u64}             120 bytes
    struct hnv_bucket      interval_ns tolerance_ns tat_ns:u64                24 bytes
    struct hnv_meter       buckets[3] (new flow, broadcast, ARP)
                           dropped[3]:u64                                     96 bytes
    struct hnv_qos_key     ifindex:u32 direction:u32                           8 bytes
    struct hnv_qos_bucket  lock:u32 priority:u32 rate burst fill_ns tokens last_ns
                           drops drop_bytes:u64 (bpf/qos.h)                   64 bytes
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from dataclasses import dataclass
from typing import Any, ClassVar, Self

# actions (hnv_flow.action)
ACT_ENCAP = 1
ACT_DELIVER = 2
ACT_DECAP_DELIVER = 3
# hnv_flow.flags
F_SET_MACS = 0x01
F_DEC_TTL = 0x02
F_VLAN = 0x04
# encapsulations (hnv_flow.encap, hnv_uplink_key.encap)
ENCAP_VXLAN = 1
ENCAP_NVGRE = 2
GEN_UNUSED = 0xFFFFFFFF
MAX_GENERATIONS = 2
HEADER_MAX = 52  # hnv_flow.header: room for the largest outer header (VXLAN_OUTER_LEN)


class Counter(enum.IntEnum):
    """``enum hnv_counter``: the index of each global counter (name: lower case, without
    the ``HNV_`` prefix)."""

    HIT_ENCAP = 0
    HIT_DELIVER = 1
    HIT_DECAP = 2
    MISS_NO_ENTRY = 3
    MISS_STALE = 4
    MISS_NOT_IPV4 = 5
    MISS_VLAN = 6
    MISS_MULTICAST = 7
    MISS_IP_OPTIONS = 8
    MISS_FRAGMENT = 9
    MISS_PROTOCOL = 10
    MISS_TCP_FLAGS = 11
    MISS_TTL = 12
    MISS_MTU = 13
    MISS_TRUNCATED = 14
    MISS_NOT_TUNNEL = 15
    MISS_NOT_LOCAL = 16
    MISS_ACTION = 17
    ERR_HELPER = 18
    ERR_NESTED_GSO = 19
    DROP_NEW_FLOW_RATE = 20
    DROP_BROADCAST_RATE = 21
    DROP_ARP_RATE = 22
    DROP_QOS_OUTBOUND = 23


class MeterKind(enum.IntEnum):
    """``enum hnv_meter_kind``: the abuse limit metering a frame, in ``hnv_meter``'s
    order (name: the ``vfp.limits`` reason without ``_rate``)."""

    NEW_FLOW = 0
    BROADCAST = 1
    ARP = 2


_C_FORMAT = "c_format"


def cfield(fmt: str | type[CStruct], *, count: int = 1, pad_after: int = 0) -> Any:
    """A dataclass field stored as ``fmt`` (a ``struct`` code such as ``"I"`` or
    ``"6s"``, or a nested ``CStruct``; ``count`` > 1 makes a tuple of nested structs),
    followed by ``pad_after`` pad bytes."""
    return dataclasses.field(metadata={_C_FORMAT: (fmt, count, pad_after)})


@dataclass(frozen=True, slots=True)
class FieldLayout:
    """Where one field sits in its C struct."""

    name: str
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class _Layout:
    struct: struct.Struct
    fields: tuple[tuple[str, str | type[CStruct], int], ...]  # name, format, count
    places: tuple[FieldLayout, ...]
    items: int  # flat struct items of one value


_LAYOUTS: dict[type[CStruct], _Layout] = {}


def _layout(cls: type[CStruct]) -> _Layout:
    known = _LAYOUTS.get(cls)
    if known is None:
        known = _LAYOUTS[cls] = _make_layout(cls)
    return known


def _make_layout(cls: type[CStruct]) -> _Layout:
    body = ""
    fields: list[tuple[str, str | type[CStruct], int]] = []
    places: list[FieldLayout] = []
    items = 0
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        fmt, count, pad_after = f.metadata[_C_FORMAT]
        offset = struct.calcsize("=" + body)
        if isinstance(fmt, str):
            body += fmt
            items += 1
        else:
            nested = _layout(fmt)
            body += nested.struct.format[1:] * count
            items += nested.items * count
        places.append(FieldLayout(f.name, offset, struct.calcsize("=" + body) - offset))
        fields.append((f.name, fmt, count))
        if pad_after:
            body += f"{pad_after}x"
    return _Layout(struct.Struct("=" + body), tuple(fields), tuple(places), items)


class CStruct:
    """Base of the mirrored structs: ``pack`` and ``unpack`` (see the module docstring)."""

    __slots__ = ()
    C_NAME: ClassVar[str]

    def pack(self) -> bytes:
        """The bytes of this value as the C struct holds them."""
        return _layout(type(self)).struct.pack(*self._flat())

    def _flat(self) -> list[Any]:
        out: list[Any] = []
        for name, fmt, count in _layout(type(self)).fields:
            value = getattr(self, name)
            if isinstance(fmt, str):
                out.append(value)
            elif count == 1:
                out.extend(value._flat())
            else:
                for item in value:
                    out.extend(item._flat())
        return out

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview) -> Self:
        """The value held in ``data`` (exactly ``size()`` bytes)."""
        flat = _layout(cls).struct.unpack(data)
        value, _ = cls._build(flat, 0)
        return value

    @classmethod
    def _build(cls, flat: tuple[Any, ...], at: int) -> tuple[Self, int]:
        kwargs: dict[str, Any] = {}
        for name, fmt, count in _layout(cls).fields:
            if isinstance(fmt, str):
                kwargs[name] = flat[at]
                at += 1
            elif count == 1:
                kwargs[name], at = fmt._build(flat, at)
            else:
                items = []
                for _ in range(count):
                    item, at = fmt._build(flat, at)
                    items.append(item)
                kwargs[name] = tuple(items)
        return cls(**kwargs), at

    @classmethod
    def size(cls) -> int:
        """``sizeof`` the C struct."""
        return _layout(cls).struct.size


def c_layout(cls: type[CStruct]) -> tuple[FieldLayout, ...]:
    """The offset and size of each field of ``cls``, in declaration order."""
    return _layout(cls).places


@dataclass(frozen=True, slots=True)
class FlowTuple(CStruct):
    """``struct hnv_tuple``: the inner MACs and IPv4 5-tuple of a flow. For ICMP echo
    ``src_port`` is type << 8 | code and ``dst_port`` the echo identifier."""

    C_NAME: ClassVar[str] = "hnv_tuple"
    dst_mac: bytes = cfield("6s")
    src_mac: bytes = cfield("6s")
    src_ip: bytes = cfield("4s")
    dst_ip: bytes = cfield("4s")
    src_port: int = cfield("H")
    dst_port: int = cfield("H")
    protocol: int = cfield("B", pad_after=3)


@dataclass(frozen=True, slots=True)
class PortKey(CStruct):
    """``struct hnv_port_key``: a frame a VM sent, by the ifindex of its port's veth
    host end."""

    C_NAME: ClassVar[str] = "hnv_port_key"
    ifindex: int = cfield("I")
    flow: FlowTuple = cfield(FlowTuple)  # noqa: RUF009 - a field spec, not a default


@dataclass(frozen=True, slots=True)
class UplinkKey(CStruct):
    """``struct hnv_uplink_key``: a tunnel frame received on an uplink."""

    C_NAME: ClassVar[str] = "hnv_uplink_key"
    remote_pa: bytes = cfield("4s")
    local_pa: bytes = cfield("4s")
    vsid: int = cfield("I")
    vlan_id: int = cfield("H")
    encap: int = cfield("B", pad_after=1)
    flow: FlowTuple = cfield(FlowTuple)  # noqa: RUF009 - a field spec, not a default


@dataclass(frozen=True, slots=True)
class GenerationRef(CStruct):
    """``struct hnv_gen_ref``: valid while ``hnv_port_gens[slot] == generation``."""

    C_NAME: ClassVar[str] = "hnv_gen_ref"
    slot: int = cfield("I")
    generation: int = cfield("I")


UNUSED_GENERATION = GenerationRef(GEN_UNUSED, 0)


@dataclass(frozen=True, slots=True)
class FlowStats(CStruct):
    """``struct hnv_stats``: what the kernel counted for one entry. ``last_used_ns`` is
    CLOCK_MONOTONIC in ns (``time.monotonic_ns()``), 0 before the first hit."""

    C_NAME: ClassVar[str] = "hnv_stats"
    packets: int = cfield("Q")
    bytes: int = cfield("Q")
    last_used_ns: int = cfield("Q")

    @property
    def last_used(self) -> float | None:
        """``last_used_ns`` on ``time.monotonic()``'s scale, None if never used."""
        return self.last_used_ns / 1e9 if self.last_used_ns else None


NO_STATS = FlowStats(0, 0, 0)


@dataclass(frozen=True, slots=True)
class FlowEntry(CStruct):
    """``struct hnv_flow``: one unified flow's compiled transposition (build it with
    ``entries.encap_flow`` / ``deliver_flow`` / ``decap_deliver_flow``)."""

    C_NAME: ClassVar[str] = "hnv_flow"
    action: int = cfield("B")
    flags: int = cfield("B")
    encap: int = cfield("B")
    header_len: int = cfield("B")
    ifindex: int = cfield("I")
    mtu: int = cfield("H")
    vlan_tci: int = cfield("H")
    csum_partial: int = cfield("H")
    entropy: int = cfield("H")
    gens: tuple[GenerationRef, ...] = cfield(GenerationRef, count=MAX_GENERATIONS)
    dst_mac: bytes = cfield("6s")
    src_mac: bytes = cfield("6s")
    header: bytes = cfield(f"{HEADER_MAX}s")
    stats: FlowStats = cfield(FlowStats)  # noqa: RUF009


@dataclass(frozen=True, slots=True)
class Bucket(CStruct):
    """``struct hnv_bucket``: one rate of a port, as a generic cell rate algorithm (the
    token bucket of ``vfp.limits`` in virtual time; ``interval_ns`` 0: off)."""

    C_NAME: ClassVar[str] = "hnv_bucket"
    interval_ns: int = cfield("Q")
    tolerance_ns: int = cfield("Q")
    tat_ns: int = cfield("Q")


@dataclass(frozen=True, slots=True)
class MeterDrops(CStruct):
    """``hnv_meter.dropped``: frames each limit dropped (``__u64[3]``, ``MeterKind``)."""

    C_NAME: ClassVar[str] = "hnv_meter.dropped"
    new_flow: int = cfield("Q")
    broadcast: int = cfield("Q")
    arp: int = cfield("Q")


@dataclass(frozen=True, slots=True)
class Meter(CStruct):
    """``struct hnv_meter``: a VM port's abuse limits and what they dropped."""

    C_NAME: ClassVar[str] = "hnv_meter"
    buckets: tuple[Bucket, ...] = cfield(Bucket, count=len(MeterKind))
    dropped: MeterDrops = cfield(MeterDrops)  # noqa: RUF009 - a field spec, not a default


STATS_OFFSET = next(f.offset for f in c_layout(FlowEntry) if f.name == "stats")


QOS_OUTBOUND = 0  # hnv_qos_key.direction: frames the VM sends
QOS_INBOUND = 1  # frames about to enter the VM


@dataclass(frozen=True, slots=True)
class QosKey(CStruct):
    """``struct hnv_qos_key``: one direction of one VM port's QoS caps (bpf/qos.h)."""

    C_NAME: ClassVar[str] = "hnv_qos_key"
    ifindex: int = cfield("I")
    direction: int = cfield("I")


@dataclass(frozen=True, slots=True)
class QosBucket(CStruct):
    """``struct hnv_qos_bucket``: a port's outbound cap in the kernel: the htb class
    its encapsulated frames go to (``priority``), and a policer's bucket in bytes for
    the rest. ``lock`` is the programs' (a write from userspace leaves it alone);
    ``tokens`` 0 with ``last_ns`` 0 makes the first frame fill the bucket."""

    C_NAME: ClassVar[str] = "hnv_qos_bucket"
    lock: int = cfield("I")
    priority: int = cfield("I")  # skb->priority of the port's htb class (0: police)
    rate: int = cfield("Q")
    burst: int = cfield("Q")
    fill_ns: int = cfield("Q")
    tokens: int = cfield("Q")
    last_ns: int = cfield("Q")
    drops: int = cfield("Q")
    drop_bytes: int = cfield("Q")
