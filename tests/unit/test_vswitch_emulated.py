"""Host switches on the emulated PA network: where VM frames arrive, and what the wire sees.

Two racks (PA subnets with VLAN tags 11 and 12, joined by the router), three hosts,
Contoso (VNet 10.1.0.0/16, subnets VSID 5001 and 5002, VXLAN) and Fabrikam (overlapping
10.1.1.0/24, VSID 6001, NVGRE).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pytest
from vfp_frames import eth, ipv4, mac, udp, udp_frame

from openhnv.packet.addresses import ip_to_str
from openhnv.packet.frames import decapsulate, vxlan_encapsulate
from openhnv.vfp import commands as c
from openhnv.vfp.emits import UPLINK
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.layout import hnv_port_commands
from openhnv.vfp.spaces import Encapsulation, Mapping
from openhnv.vswitch.emulated import EmulatedDriver, EmulatedNetwork
from openhnv.vswitch.errors import VSwitchError
from openhnv.vswitch.switch import HostSwitch, PaConfig

ROUTER = "40:1d:d8:b7:1c:06"
RACKS = {
    "rack1": ("192.168.1.0/24", 11, "192.168.1.1"),
    "rack2": ("192.168.2.0/24", 12, "192.168.2.1"),
}
HOSTS = {"h1": ("rack1", "192.168.1.10"), "h2": ("rack1", "192.168.1.20"),
         "h3": ("rack2", "192.168.2.30")}  # fmt: skip
CONTOSO, FABRIKAM = "rdid-contoso", "rdid-fabrikam"
PREFIXES = {CONTOSO: ["10.1.0.0/16"], FABRIKAM: ["10.1.1.0/24"]}
ENCAP: dict[str, Encapsulation] = {CONTOSO: "vxlan", FABRIKAM: "nvgre"}


@dataclass(frozen=True)
class Vm:
    name: str
    host: str
    mac: str
    ip: str
    vsid: int
    rdid: str


VMS = {
    v.name: v
    for v in (
        Vm("c11", "h1", "00:1d:d8:00:00:11", "10.1.1.11", 5001, CONTOSO),
        Vm("c12", "h2", "00:1d:d8:00:00:12", "10.1.1.12", 5001, CONTOSO),
        Vm("c13", "h3", "00:1d:d8:00:00:13", "10.1.1.13", 5001, CONTOSO),
        Vm("c14", "h1", "00:1d:d8:00:00:14", "10.1.1.14", 5001, CONTOSO),
        Vm("c21", "h2", "00:1d:d8:00:00:21", "10.1.2.21", 5002, CONTOSO),
        Vm("c22", "h3", "00:1d:d8:00:00:22", "10.1.2.22", 5002, CONTOSO),
        Vm("f11", "h1", "00:1d:d8:00:01:11", "10.1.1.11", 6001, FABRIKAM),
        Vm("f12", "h3", "00:1d:d8:00:01:12", "10.1.1.12", 6001, FABRIKAM),
    )
}


class Net:
    """The network and a started HostSwitch per host, programmed as an agent would."""

    def __init__(self, vlans: dict[str, int | None] | None = None) -> None:
        self.network = EmulatedNetwork(capture=True)
        for name, (cidr, vlan, gateway) in RACKS.items():
            self.network.add_subnet(name, cidr, vlan_id=vlan, gateway=gateway)
        self.switches: dict[str, HostSwitch] = {}
        for host, (rack, pa) in HOSTS.items():
            self.network.add_host(host, {"up0": rack})
            for vm in VMS.values():
                if vm.host == host:
                    self.network.add_vm_port(host, vm.name, vm.mac)
            sw = HostSwitch(VfpEngine(), EmulatedDriver(self.network, host), expire_interval=None)
            sw.start()
            _, rack_vlan, gateway = RACKS[rack]
            pa_vlan = vlans[host] if vlans is not None and host in vlans else rack_vlan
            sw.set_provider_addresses([PaConfig(pa, 24, pa_vlan, gateway, "up0")])
            cmds: list[c.Command] = []
            for vm in VMS.values():
                pa_of_vm = HOSTS[vm.host][1]
                cmds.append(
                    c.AddMapping(Mapping(vm.rdid, vm.ip, pa_of_vm, vm.mac, vm.vsid, ENCAP[vm.rdid]))
                )
                if vm.host == host:
                    port = c.AddPort(vm.name, vm.mac, vm.vsid, vm.rdid, (vm.ip,))
                    cmds += hnv_port_commands(
                        port, router_mac=ROUTER, vnet_prefixes=PREFIXES[vm.rdid]
                    )
            sw.apply(cmds)
            self.switches[host] = sw
        self.network.wire()

    def send(self, vm: str, frame: bytes) -> None:
        self.network.send_from_vm(VMS[vm].host, vm, frame)

    def received(self, vm: str) -> list[bytes]:
        return self.network.received(VMS[vm].host, vm)

    def everyone_else_got_nothing(self, *but: str) -> None:
        for vm in VMS:
            if vm not in but:
                assert self.received(vm) == [], vm

    def counters(self, vm_or_uplink: str, host: str | None = None) -> dict[str, int]:
        host = host or VMS[vm_or_uplink].host
        return self.switches[host].inspect(lambda e: e.listing.counters(vm_or_uplink))


def frame_between(a: str, b: str, sport: int = 1000) -> bytes:
    return udp_frame(VMS[a].mac, VMS[b].mac, VMS[a].ip, VMS[b].ip, sport=sport)


def untag(frame: bytes) -> tuple[int | None, bytes]:
    if frame[12:14] == b"\x81\x00":
        return struct.unpack("!H", frame[14:16])[0] & 0x0FFF, frame[:12] + frame[16:]
    return None, frame


@pytest.fixture
def net() -> Net:
    return Net()


def test_l2_to_a_vm_on_the_same_host_never_touches_the_wire(net: Net) -> None:
    frame = frame_between("c11", "c14")
    net.send("c11", frame)
    assert net.received("c14") == [frame]
    assert net.network.wire() == []
    net.everyone_else_got_nothing()


def test_l2_to_a_vm_on_another_host_of_the_rack_goes_vxlan_tagged(net: Net) -> None:
    frame = frame_between("c11", "c12")
    for _ in range(3):  # slow path, then fast path
        net.send("c11", frame)
    assert net.received("c12") == [frame] * 3
    ((rack, outer), *_) = net.network.wire()
    vlan, plain = untag(outer)
    assert (rack, vlan) == ("rack1", 11)
    t = decapsulate(plain)
    assert (t.encapsulation, t.vsid, t.inner) == ("vxlan", 5001, frame)
    assert (ip_to_str(t.outer_ip.src), ip_to_str(t.outer_ip.dst)) == (
        "192.168.1.10",
        "192.168.1.20",
    )
    assert net.counters(UPLINK, "h2")["uft_hits"] == 2
    net.everyone_else_got_nothing()


def test_a_pa_in_another_rack_is_reached_through_the_router(net: Net) -> None:
    frame = frame_between("c11", "c13")
    net.send("c11", frame)
    assert net.received("c13") == [frame]
    (rack1, first), (rack2, second) = net.network.wire()
    assert (rack1, untag(first)[0], rack2, untag(second)[0]) == ("rack1", 11, "rack2", 12)
    assert untag(first)[1][22] - 1 == untag(second)[1][22]  # the router took one outer hop
    assert net.network.counters["router:forwarded"] == 1


def test_the_distributed_router_routes_between_subnets_of_a_vnet(net: Net) -> None:
    c11, c22 = VMS["c11"], VMS["c22"]
    frame = udp_frame(c11.mac, ROUTER, c11.ip, c22.ip, ttl=64)
    net.send("c11", frame)
    (got,) = net.received("c22")
    assert got[0:6] == mac(c22.mac)
    assert got[6:12] == mac(ROUTER)
    assert got[22] == 63  # inner TTL - 1
    assert got[34:] == frame[34:]
    outers = [decapsulate(untag(f)[1]) for _, f in net.network.wire()]
    assert {t.vsid for t in outers} == {5002}  # the VSID of the destination subnet
    net.everyone_else_got_nothing()


def test_no_path_leads_from_one_vnet_into_another(net: Net) -> None:
    c11, f12 = VMS["c11"], VMS["f12"]
    net.send("c11", udp_frame(c11.mac, f12.mac, c11.ip, f12.ip))  # L2 to a Fabrikam MAC
    assert net.counters("c11")["drop:no_mapping"] == 1
    net.send("c11", udp_frame(c11.mac, ROUTER, c11.ip, f12.ip))  # routed: Contoso's 10.1.1.12
    assert len(net.received("c12")) == 1
    net.send("c11", udp_frame(c11.mac, ROUTER, c11.ip, "10.1.1.99"))  # no such CA
    assert net.counters("c11")["drop:no_mapping"] == 2
    net.everyone_else_got_nothing()


def test_fabrikam_rides_nvgre_with_its_overlapping_addresses(net: Net) -> None:
    frame = frame_between("f11", "f12")
    net.send("f11", frame)
    assert net.received("f12") == [frame]
    outers = [untag(f)[1] for _, f in net.network.wire()]
    assert all(o[23] == 47 for o in outers)  # GRE
    t = decapsulate(outers[-1])
    assert (t.encapsulation, t.vsid, t.inner) == ("nvgre", 6001, frame)
    net.everyone_else_got_nothing()


def test_a_broadcast_reaches_every_other_vm_of_the_vsid_only(net: Net) -> None:
    c11 = VMS["c11"]
    frame = eth(
        "ff:ff:ff:ff:ff:ff", c11.mac, 0x0800, ipv4(c11.ip, "10.1.1.255", 17, udp(5000, 500))
    )
    net.send("c11", frame)
    for name in ("c12", "c13", "c14"):
        (got,) = net.received(name)
        assert got[0:6] == mac(VMS[name].mac)  # each copy to the VM's MAC
        assert got[30:34] == bytes(int(x) for x in VMS[name].ip.split("."))  # and CA
    net.everyone_else_got_nothing()


def test_a_vm_spoofing_its_source_mac_is_dropped_at_its_port(net: Net) -> None:
    c11, c14, c12 = VMS["c11"], VMS["c14"], VMS["c12"]
    net.send("c11", udp_frame(c14.mac, c12.mac, c11.ip, c12.ip))
    assert net.counters("c11")["drop:spoofed_source"] == 1
    assert net.network.wire() == []
    net.everyone_else_got_nothing()


def test_a_host_claiming_another_hosts_ca_is_dropped_by_the_receiver(net: Net) -> None:
    inner = frame_between("c11", "c12")  # c11 lives on h1, but h3 sends it
    rogue = vxlan_encapsulate(
        inner, outer_src_mac=net.network.uplink_mac("h3", "up0"),
        outer_dst_mac=net.network.uplink_mac("h2", "up0"), src_pa="192.168.2.30",
        dst_pa="192.168.1.20", vni=5001, src_port=50000, vlan_id=11,
    )  # fmt: skip
    net.network.add_uplink("h3", "rogue", "rack1")
    net.network.inject("h3", "rogue", rogue)
    assert net.counters(UPLINK, "h2")["drop:spoofed_source"] == 1
    net.everyone_else_got_nothing()


def test_a_pa_with_the_wrong_vlan_is_not_heard_on_its_subnet() -> None:
    net = Net(vlans={"h1": 99})
    net.send("c11", frame_between("c11", "c12"))
    assert net.network.counters["drop:vlan_mismatch"] == 1
    net.everyone_else_got_nothing()


def test_a_pa_leaving_the_fabric_is_forgotten_by_its_peers(net: Net) -> None:
    router = net.network.subnets["rack1"].router_mac.hex(":")
    assert net.switches["h1"].neighbors() == {
        "192.168.1.1": router,  # the gateway, and the other host of the rack
        "192.168.1.20": net.network.uplink_mac("h2", "up0"),
    }
    net.switches["h2"].set_provider_addresses([])
    assert "192.168.1.20" not in net.switches["h1"].neighbors()
    net.send("c11", frame_between("c11", "c12"))
    assert net.counters("c11")["drop:no_pa_route"] == 1
    net.everyone_else_got_nothing()


def test_stopped_hosts_drop_and_bad_fabric_use_is_named() -> None:
    net = Net()
    net.switches["h2"].stop()
    net.send("c11", frame_between("c11", "c12"))
    assert net.network.counters["drop:host_down"] == 1
    with pytest.raises(VSwitchError, match="no VM port 'nope'"):
        net.network.send_from_vm("h1", "nope", b"")
    with pytest.raises(VSwitchError, match="no uplink 'up9'"):
        net.network.inject("h1", "up9", b"")
    with pytest.raises(VSwitchError, match="subnet 'rack1' exists"):
        net.network.add_subnet("rack1", "10.0.0.0/8")


def test_pas_the_fabric_refuses_leave_the_switch_as_it_was(net: Net) -> None:
    h1 = net.switches["h1"]
    before = h1.inspect(lambda e: e.listing.provider_addresses())
    with pytest.raises(VSwitchError, match="does not fit its subnet"):
        h1.set_provider_addresses([PaConfig("10.9.9.9", 24, None, None, "up0")])
    with pytest.raises(VSwitchError, match=r"192\.168\.1\.20 on h1/up0 is in use"):
        h1.set_provider_addresses([PaConfig("192.168.1.20", 24, 11, None, "up0")])
    with pytest.raises(VSwitchError, match="no uplink 'up7'"):
        h1.set_provider_addresses([PaConfig("192.168.1.10", 24, 11, None, "up7")])
    assert h1.inspect(lambda e: e.listing.provider_addresses()) == before
    net.send("c11", frame_between("c11", "c12"))
    assert len(net.received("c12")) == 1


def test_a_host_with_two_uplinks_sends_each_vm_from_its_mapped_pa(net: Net) -> None:
    net.network.add_host("h4", {"up0": "rack1", "up1": "rack2"})
    sw = HostSwitch(VfpEngine(), EmulatedDriver(net.network, "h4"), expire_interval=None)
    sw.start()
    sw.set_provider_addresses([
        PaConfig("192.168.1.40", 24, 11, "192.168.1.1", "up0"),
        PaConfig("192.168.2.40", 24, 12, "192.168.2.1", "up1"),
    ])  # fmt: skip
    new = {"d1": ("00:1d:d8:00:00:d1", "10.1.1.41", "192.168.1.40"),
           "d2": ("00:1d:d8:00:00:d2", "10.1.1.42", "192.168.2.40")}  # fmt: skip
    cmds: list[c.Command] = []
    for name, (vm_mac, ip, pa) in new.items():
        mapping = c.AddMapping(Mapping(CONTOSO, ip, pa, vm_mac, 5001))
        cmds.append(mapping)
        for other in net.switches.values():
            other.apply([mapping])
        net.network.add_vm_port("h4", name, vm_mac)
        port = c.AddPort(name, vm_mac, 5001, CONTOSO, (ip,))
        cmds += hnv_port_commands(port, router_mac=ROUTER, vnet_prefixes=PREFIXES[CONTOSO])
    for vm in VMS.values():
        cmds.append(c.AddMapping(Mapping(vm.rdid, vm.ip, HOSTS[vm.host][1], vm.mac, vm.vsid,
                                         ENCAP[vm.rdid])))  # fmt: skip
    sw.apply(cmds)
    c12 = VMS["c12"]
    for name, (vm_mac, ip, _pa) in new.items():
        frames = [udp_frame(vm_mac, c12.mac, ip, c12.ip, sport=4000 + i) for i in range(16)]
        net.network.send_batch_from_vm("h4", name, frames)
        assert net.received("c12") == frames  # none dropped as spoofed by h2
    wire = net.network.wire()
    sources = {(rack, ip_to_str(decapsulate(untag(f)[1]).outer_ip.src)) for rack, f in wire}
    # d1 straight on rack1; d2 on rack2 to the router, then routed onto rack1
    assert sources == {("rack1", "192.168.1.40"), ("rack2", "192.168.2.40"),
                       ("rack1", "192.168.2.40")}  # fmt: skip
    net.everyone_else_got_nothing()


def test_every_vm_reaches_exactly_the_vms_of_its_vnet_across_many_hosts() -> None:
    network = EmulatedNetwork()
    for r in range(3):
        network.add_subnet(f"r{r}", f"172.16.{r}.0/24", vlan_id=100 + r, gateway=f"172.16.{r}.1")
    hosts = {f"h{i}": (f"r{i % 3}", f"172.16.{i % 3}.{10 + i}") for i in range(9)}
    vms = []  # (name, host, mac, ip, vsid, rdid)
    for i in range(36):
        vnet = i % 2
        vsid = 7000 + vnet * 10 + (i // 2) % 2  # two VNets, two subnets each
        ip = f"10.{vsid % 10}.0.{10 + i}"  # both VNets use 10.0.0.0/24 and 10.1.0.0/24
        vms.append((f"v{i}", f"h{i % 9}", f"00:1d:d8:00:02:{i:02x}", ip, vsid, f"vnet{vnet}"))
    switches = {}
    for host, (rack, pa) in hosts.items():
        network.add_host(host, {"up0": rack})
        sw = HostSwitch(VfpEngine(), EmulatedDriver(network, host), expire_interval=None)
        sw.start()
        gateway = pa.rsplit(".", 1)[0] + ".1"
        sw.set_provider_addresses([PaConfig(pa, 24, 100 + int(rack[1]), gateway, "up0")])
        cmds: list[c.Command] = []
        for name, vm_host, vm_mac, ip, vsid, rdid in vms:
            cmds.append(c.AddMapping(Mapping(rdid, ip, hosts[vm_host][1], vm_mac, vsid)))
            if vm_host == host:
                network.add_vm_port(host, name, vm_mac)
                port = c.AddPort(name, vm_mac, vsid, rdid, (ip,))
                cmds += hnv_port_commands(port, router_mac=ROUTER, vnet_prefixes=["10.0.0.0/8"])
        sw.apply(cmds)
        switches[host] = sw
    for src in vms:
        for dst in vms:
            if src is dst:
                continue
            same_vnet = src[5] == dst[5]
            routed = src[4] != dst[4]
            frame = udp_frame(src[2], ROUTER if routed else dst[2], src[3], dst[3])
            network.send_from_vm(src[1], src[0], frame)
            got = network.received(dst[1], dst[0])
            assert len(got) == (1 if same_vnet else 0), (src[0], dst[0])
            for other in vms:  # nobody else heard it
                assert network.received(other[1], other[0]) == [], (src[0], dst[0], other[0])
    assert network.counters["router:forwarded"] > 0


def test_pas_answer_ping_on_their_rack_and_through_the_router(net: Net) -> None:
    assert net.network.ping("h1", "up0", "192.168.1.20")  # same rack
    assert net.network.ping("h1", "up0", "192.168.2.30")  # the other rack, routed both ways
    assert not net.network.ping("h1", "up0", "192.168.2.99")  # nobody there
    assert not net.network.ping("h1", "up0", "10.0.0.1")  # no route
    net.switches["h3"].stop()
    assert not net.network.ping("h1", "up0", "192.168.2.30")
    icmp = [untag(f) for _, f in net.network.wire() if untag(f)[1][23] == 1]
    replies = [(vlan, f) for vlan, f in icmp if f[34] == 0]  # echo replies
    assert {vlan for vlan, _ in replies} == {11, 12}  # tagged with each rack's VLAN
    net.everyone_else_got_nothing()
