"""The frame description of ``hnv trace``: ``src=10.1.1.12 dst=10.1.1.11 proto=tcp dport=1433``.

Parsing is pure and strict: every token is ``name=value`` with a known name and a valid
value, or ``FrameSpecError`` names the token. What the description leaves out is filled
from the host's engine later (``openhnv.host.queries``): the MACs from the port and the
mapping space, the PAs and VSID of a frame traced from the uplink.

Tokens (``vfpctrl /process-tuples`` carries the same facts):

=============  =========================================================================
``src``        source IP (required)
``dst``        destination IP (required)
``proto``      ``tcp``, ``udp``, ``icmp`` or a number 6/17/1 (default: ``tcp`` when a port
               is given, else ``icmp``)
``sport``      source port (default 49152), ``dport`` destination port (default 80)
``flags``      TCP flags as letters ``FSRPAU`` (default ``S``) or a number
``smac``       source MAC, ``dmac`` destination MAC (default: from port and mappings)
``ttl``        IP TTL / hop limit (default 64)
``dir``        ``out`` (a frame the VM sends) or ``in`` (a frame for the VM)
``vsid``       uplink only: the VNI / GRE key VSID (default: the destination CA's)
``rdid``       uplink only: routing domain to look the CAs up in (when CAs overlap)
``outer_src``  uplink only: outer source PA (default: the source CA's PA)
``outer_dst``  uplink only: outer destination PA (default: the destination CA's PA)
``encap``      uplink only: ``vxlan`` or ``nvgre`` (default: the destination CA's)
=============  =========================================================================
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from openhnv.host.errors import FrameSpecError
from openhnv.packet.addresses import mac_to_bytes, mac_to_str
from openhnv.packet.errors import PacketError
from openhnv.vfp.policy import MAX_PORT, MAX_VSID, MIN_VSID

PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1}
PROTOCOL_NAMES = {number: name for name, number in PROTOCOLS.items()}
DEFAULT_SOURCE_PORT = 49152
DEFAULT_DESTINATION_PORT = 80
DEFAULT_TTL = 64
MAX_TTL = 255
TCP_FLAG_LETTERS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20}
DEFAULT_TCP_FLAGS = "S"
DIRECTIONS = ("out", "in")
ENCAPSULATIONS = ("vxlan", "nvgre")
TOKENS = (
    "src", "dst", "proto", "sport", "dport", "flags", "smac", "dmac", "ttl", "dir",
    "vsid", "rdid", "outer_src", "outer_dst", "encap",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class FrameSpec:
    """A parsed frame description; ``None`` means "fill in from the host"."""

    src: str
    dst: str
    protocol: int
    src_port: int | None = None
    dst_port: int | None = None
    tcp_flags: int = TCP_FLAG_LETTERS[DEFAULT_TCP_FLAGS]
    src_mac: str | None = None
    dst_mac: str | None = None
    ttl: int = DEFAULT_TTL
    direction: str | None = None
    vsid: int | None = None
    rdid: str | None = None
    outer_src: str | None = None
    outer_dst: str | None = None
    encapsulation: str | None = None

    @property
    def protocol_name(self) -> str:
        return PROTOCOL_NAMES.get(self.protocol, str(self.protocol))

    @property
    def has_ports(self) -> bool:
        return self.protocol in (PROTOCOLS["tcp"], PROTOCOLS["udp"])

    def describe(self) -> str:
        """The description back as text (defaults filled where they are known)."""
        parts = [f"{self.protocol_name} {self.src}"]
        if self.has_ports:
            parts[0] += f":{self.src_port}"
        parts.append(f"-> {self.dst}")
        if self.has_ports:
            parts[-1] += f":{self.dst_port}"
        return " ".join(parts)


def _ip(name: str, value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise FrameSpecError(f"{name}={value!r}: not an IPv4 or IPv6 address") from None


def _int(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value, 0)
    except ValueError:
        raise FrameSpecError(f"{name}={value!r}: not a number") from None
    if not low <= number <= high:
        raise FrameSpecError(f"{name}={value!r}: must be within {low}..{high}")
    return number


def _mac(name: str, value: str) -> str:
    try:
        return mac_to_str(mac_to_bytes(value))
    except PacketError:
        raise FrameSpecError(
            f"{name}={value!r}: not a MAC address like 00:1d:d8:07:00:01"
        ) from None


def _protocol(value: str) -> int:
    text = value.lower()
    if text in PROTOCOLS:
        return PROTOCOLS[text]
    if text.isdigit() and int(text) in PROTOCOL_NAMES:
        return int(text)
    raise FrameSpecError(f"proto={value!r}: expected tcp, udp or icmp (or 6, 17, 1)")


def _flags(value: str) -> int:
    if value.isdigit() or value.lower().startswith("0x"):
        return _int("flags", value, 0, 0xFF)
    bits = 0
    for letter in value.upper():
        if letter not in TCP_FLAG_LETTERS:
            raise FrameSpecError(
                f"flags={value!r}: unknown flag {letter!r} (use letters of FSRPAU or a number)"
            )
        bits |= TCP_FLAG_LETTERS[letter]
    return bits


def _split(tokens: Sequence[str]) -> dict[str, str]:
    given: dict[str, str] = {}
    for token in tokens:
        name, sep, value = token.partition("=")
        name = name.strip().lower()
        if not sep or not name or not value:
            raise FrameSpecError(f"bad token {token!r}: expected name=value, e.g. dst=10.1.1.11")
        if name not in TOKENS:
            raise FrameSpecError(f"unknown token {name!r}: expected one of {', '.join(TOKENS)}")
        if name in given:
            raise FrameSpecError(f"token {name!r} given twice")
        given[name] = value.strip()
    return given


def parse_description(tokens: Sequence[str]) -> FrameSpec:
    """Parse ``name=value`` tokens into a ``FrameSpec``; ``FrameSpecError`` if any is bad."""
    given = _split(tokens)
    for required in ("src", "dst"):
        if required not in given:
            raise FrameSpecError(f"missing {required}=IP in the frame description")
    src, dst = _ip("src", given["src"]), _ip("dst", given["dst"])
    if ipaddress.ip_address(src).version != ipaddress.ip_address(dst).version:
        raise FrameSpecError(f"src={src} and dst={dst} are of different IP families")
    has_port = "sport" in given or "dport" in given
    protocol = _protocol(given.get("proto", "tcp" if has_port else "icmp"))
    spec_ports = protocol in (PROTOCOLS["tcp"], PROTOCOLS["udp"])
    if has_port and not spec_ports:
        raise FrameSpecError(f"sport/dport given but proto={PROTOCOL_NAMES[protocol]} has no ports")
    if "flags" in given and protocol != PROTOCOLS["tcp"]:
        raise FrameSpecError("flags= applies to proto=tcp only")
    direction = given.get("dir")
    if direction is not None and direction not in DIRECTIONS:
        raise FrameSpecError(f"dir={direction!r}: expected out or in")
    encapsulation = given.get("encap")
    if encapsulation is not None and encapsulation.lower() not in ENCAPSULATIONS:
        raise FrameSpecError(f"encap={encapsulation!r}: expected vxlan or nvgre")
    outer = {k: _ip(k, given[k]) for k in ("outer_src", "outer_dst") if k in given}
    for name, address in outer.items():
        if ipaddress.ip_address(address).version != 4:
            raise FrameSpecError(f"{name}={address}: provider addresses are IPv4")
    return FrameSpec(
        src=src,
        dst=dst,
        protocol=protocol,
        src_port=_int("sport", given.get("sport", str(DEFAULT_SOURCE_PORT)), 0, MAX_PORT)
        if spec_ports
        else None,
        dst_port=_int("dport", given.get("dport", str(DEFAULT_DESTINATION_PORT)), 0, MAX_PORT)
        if spec_ports
        else None,
        tcp_flags=_flags(given.get("flags", DEFAULT_TCP_FLAGS)),
        src_mac=_mac("smac", given["smac"]) if "smac" in given else None,
        dst_mac=_mac("dmac", given["dmac"]) if "dmac" in given else None,
        ttl=_int("ttl", given.get("ttl", str(DEFAULT_TTL)), 0, MAX_TTL),
        direction=direction,
        vsid=_int("vsid", given["vsid"], MIN_VSID, MAX_VSID) if "vsid" in given else None,
        rdid=given.get("rdid"),
        outer_src=outer.get("outer_src"),
        outer_dst=outer.get("outer_dst"),
        encapsulation=encapsulation.lower() if encapsulation is not None else None,
    )
