"""Hand-built frames (struct only) and a two-host HNV fixture for the engine's tests."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence

from openhnv.vfp import commands as c
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.layout import hnv_port_commands
from openhnv.vfp.policy import Direction, Rule
from openhnv.vfp.spaces import Mapping, ProviderAddress


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def eth(dst: str, src: str, ethertype: int, payload: bytes, vlan: int | None = None) -> bytes:
    tag = struct.pack("!HH", 0x8100, vlan) if vlan is not None else b""
    return mac(dst) + mac(src) + tag + struct.pack("!H", ethertype) + payload


def ipv4(src: str, dst: str, proto: int, payload: bytes, ttl: int = 64) -> bytes:
    s, d = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, ttl, proto, 0, s, d)
    return head[:10] + struct.pack("!H", csum(head)) + head[12:] + payload


def udp(sport: int, dport: int, payload: bytes = b"x") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(sport: int, dport: int, flags: int = 0x02, payload: bytes = b"") -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, flags, 1024, 0, 0) + payload


def icmp_echo(ident: int, kind: int = 8) -> bytes:
    body = struct.pack("!BBHHH", kind, 0, 0, ident, 1) + b"ping"
    return body[:2] + struct.pack("!H", csum(body)) + body[4:]


def udp_frame(
    src_mac: str,
    dst_mac: str,
    src: str,
    dst: str,
    sport: int = 1000,
    dport: int = 53,
    ttl: int = 64,
) -> bytes:
    return eth(dst_mac, src_mac, 0x0800, ipv4(src, dst, 17, udp(sport, dport), ttl))


def tcp_frame(
    src_mac: str, dst_mac: str, src: str, dst: str, sport: int, dport: int, flags: int = 0x02
) -> bytes:
    return eth(dst_mac, src_mac, 0x0800, ipv4(src, dst, 6, tcp(sport, dport, flags)))


BROADCAST = "ff:ff:ff:ff:ff:ff"
ARP_REQUEST, ARP_REPLY = 1, 2


def arp_frame(
    op: int, sender_mac: str, sender_ip: str, target_ip: str, dst: str = BROADCAST
) -> bytes:
    """An Ethernet/IPv4 ARP frame (``op`` request or reply) with a zero target MAC."""
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + mac(sender_mac)
    body += ipaddress.IPv4Address(sender_ip).packed
    body += b"\0" * 6 + ipaddress.IPv4Address(target_ip).packed
    return eth(dst, sender_mac, 0x0806, body)


def arp_request(src_mac: str, src_ip: str, target_ip: str) -> bytes:
    return arp_frame(ARP_REQUEST, src_mac, src_ip, target_ip)


# The seed's picture: host A (PA 192.168.1.10) and host B (PA 192.168.1.20), Contoso's VNet
# 10.1.0.0/16 with subnets 10.1.1.0/24 (VSID 5001) and 10.1.2.0/24 (VSID 5002); Fabrikam
# overlapping 10.1.1.0/24 (VSID 6001).
ROUTER = "40:1d:d8:b7:1c:06"
PA_A, PA_B = "192.168.1.10", "192.168.1.20"
MAC_A, MAC_B = "02:00:00:00:0a:01", "02:00:00:00:0b:01"
CONTOSO, FABRIKAM = "rdid-contoso", "rdid-fabrikam"
VM1 = ("vm1", "00:1d:d8:00:00:01", "10.1.1.11", 5001, CONTOSO, PA_A)
VM2 = ("vm2", "00:1d:d8:00:00:02", "10.1.1.12", 5001, CONTOSO, PA_B)
VM3 = ("vm3", "00:1d:d8:00:00:03", "10.1.2.13", 5002, CONTOSO, PA_A)
VM4 = ("vm4", "00:1d:d8:00:00:04", "10.1.2.14", 5002, CONTOSO, PA_B)
VM5 = ("vm5", "00:1d:d8:00:00:05", "10.1.1.15", 5001, CONTOSO, PA_A)
FAB1 = ("fab1", "00:1d:d8:00:01:01", "10.1.1.11", 6001, FABRIKAM, PA_B)
ALL_VMS = (VM1, VM2, VM3, VM4, VM5, FAB1)


def host(
    pa: str,
    pa_mac: str,
    *,
    capacity: int = 1000,
    idle: float = 60.0,
    nic_acl: Sequence[tuple[Direction, Rule]] = (),
) -> VfpEngine:
    """A switch for host ``pa`` with every VM's mapping and its local VMs' ports."""
    sw = VfpEngine(flow_capacity=capacity, idle_timeout=idle, clock=lambda: 0.0)
    sw.programming.apply(c.AddProviderAddress(ProviderAddress(pa, pa_mac, 24)))
    for peer_pa, peer_mac in ((PA_A, MAC_A), (PA_B, MAC_B)):
        if peer_pa != pa:
            sw.programming.apply(c.SetPaNeighbor(peer_pa, peer_mac))
    for name, vm_mac, ip, vsid, rdid, vm_pa in ALL_VMS:
        sw.programming.apply(c.AddMapping(Mapping(rdid, ip, vm_pa, vm_mac, vsid)))
        if vm_pa == pa:
            prefixes = ["10.1.0.0/16"]
            port = c.AddPort(name, vm_mac, vsid, rdid, (ip,))
            commands = hnv_port_commands(
                port, router_mac=ROUTER, vnet_prefixes=prefixes, nic_acl=nic_acl
            )
            sw.programming.apply_all(commands)
    return sw


class TcpEnd:
    """One end of a TCP connection as a Linux VM sends it: DF set, the IP ID counting
    up, timestamp options (a 32-byte TCP header), sequence numbers that advance."""

    def __init__(self, vm: tuple[object, ...], peer: tuple[object, ...], sport: int, dport: int):
        self.mac, self.ip = str(vm[1]), str(vm[2])
        self.peer_mac, self.peer_ip = str(peer[1]), str(peer[2])
        self.sport, self.dport = sport, dport
        self.ident, self.seq, self.ack = 0x4D2, 1_000_000 + sport, 0

    def segment(
        self, flags: int, payload: bytes = b"", window: int = 502, tos: int = 0, ack: int = -1
    ) -> bytes:
        """The next segment; ``tos`` carries DSCP/ECN bits, ``ack`` defaults to the last seen."""
        self.ident = (self.ident + 1) & 0xFFFF
        options = b"\x01\x01\x08\x0a" + struct.pack("!II", self.ident * 7, self.ack & 0xFFFF)
        head = struct.pack(
            "!HHIIBBHHH", self.sport, self.dport, self.seq, self.ack if ack < 0 else ack,
            0x80, flags, window, 0, 0,
        )  # fmt: skip
        segment = head + options + payload
        s, d = ipaddress.IPv4Address(self.ip).packed, ipaddress.IPv4Address(self.peer_ip).packed
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, tos, 20 + len(segment), self.ident, 0x4000, 64, 6, 0, s, d
        )
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        self.seq = (self.seq + len(payload) + (1 if flags & 0x03 else 0)) & 0xFFFFFFFF
        return eth(self.peer_mac, self.mac, 0x0800, ip + segment)

    def saw(self, frame: bytes) -> None:
        """Acknowledge what the peer's ``frame`` carried (for the next segments' ACK)."""
        seq = struct.unpack("!I", frame[38:42])[0]
        flags = frame[47]
        self.ack = (seq + len(frame) - 66 + (1 if flags & 0x03 else 0)) & 0xFFFFFFFF
