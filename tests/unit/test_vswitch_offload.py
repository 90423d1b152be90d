"""The offload edge under HostSwitch: which kernel entries exist, and whether the kernel
would run them, as frames, commands and expiry go by (a fake fast path's maps)."""

from __future__ import annotations

from collections.abc import Sequence

from fake_fastpath import FakeFastPath, KernelNullDriver, kernel_outer
from switch_fixtures import vm_commands
from vfp_frames import ALL_VMS, MAC_B, PA_A, PA_B, VM1, VM2, TcpEnd

from openhnv.vfp import commands as c
from openhnv.vfp.emits import Transmit
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.policy import Block, Rule, conditions
from openhnv.vfp.spaces import Mapping
from openhnv.vswitch.fastpath import entries
from openhnv.vswitch.fastpath.layout import ACT_DECAP_DELIVER, ACT_ENCAP, PortKey, UplinkKey
from openhnv.vswitch.switch import HostSwitch, PaConfig

DENY_ALL_OUT = Rule("deny-all-out", 100, conditions(), Block())
DENY_ALL_IN = Rule("deny-all-in", 100, conditions(), Block())


def kernel_host(
    pa: str,
    fast_path: FakeFastPath | None = None,
    clock: list[float] | None = None,
    driver: KernelNullDriver | None = None,
) -> tuple[HostSwitch, KernelNullDriver]:
    now = clock or [0.0]
    driver = driver or KernelNullDriver(fast_path)
    sw = HostSwitch(VfpEngine(clock=lambda: now[0]), driver, expire_interval=None)
    sw.start()
    sw.set_provider_addresses([PaConfig(pa, 24, None, None, "up0")])
    sw.apply(vm_commands(pa))
    for name, vm_mac, _ip, _vsid, _rdid, vm_pa in ALL_VMS:
        if vm_pa == pa:
            driver.inject_port(name, vm_mac)
    driver.inject_neighbor(PA_B if pa == PA_A else PA_A, MAC_B)
    return sw, driver


def half_connect(
    a: KernelNullDriver, b: KernelNullDriver, sport: int = 40000
) -> tuple[bytes, TcpEnd, TcpEnd]:
    """VM1 on host A sends a SYN to VM2 on host B, which answers; returns the SYN-ACK as
    host A's uplink receives it, and both ends (VM1 has not seen the SYN-ACK yet)."""
    c1, c2 = TcpEnd(VM1, VM2, sport, 80), TcpEnd(VM2, VM1, 80, sport)
    syn = c1.segment(0x02)
    a.inject_from_port("vm1", syn)
    [tx] = a.take_transmitted()
    b.inject_from_uplink(tx.frame)
    c2.saw(syn)
    synack = c2.segment(0x12)
    b.inject_from_port("vm2", synack)
    [back] = b.take_transmitted()
    c1.saw(synack)
    return back.frame, c1, c2


def syn_reaches_b(a: KernelNullDriver, b: KernelNullDriver, sport: int = 40000) -> bytes:
    """VM1 on host A sends a SYN that host B delivers to VM2; returns VM2's SYN-ACK."""
    c1, c2 = TcpEnd(VM1, VM2, sport, 80), TcpEnd(VM2, VM1, 80, sport)
    syn = c1.segment(0x02)
    a.inject_from_port("vm1", syn)
    [tx] = a.take_transmitted()
    b.inject_from_uplink(tx.frame)
    c2.saw(syn)
    return c2.segment(0x12)


def connect(a: KernelNullDriver, b: KernelNullDriver, sport: int = 40000) -> tuple[bytes, bytes]:
    """VM1 on host A opens TCP to VM2 on host B; returns VM1's and VM2's next segments."""
    synack, c1, c2 = half_connect(a, b, sport)
    a.inject_from_uplink(synack)
    for segment in (c1.segment(0x10), c1.segment(0x18, b"hello")):  # ACK, data: they go down
        a.inject_from_port("vm1", segment)
        [tx] = a.take_transmitted()
        b.inject_from_uplink(tx.frame)
    a.take_sent("vm1")
    b.take_sent("vm2")
    return c1.segment(0x10, b"data"), c2.segment(0x10, b"more")


def edge(switch: HostSwitch) -> dict[str, int]:
    """The offload edge's counters (``hnv host status``'s fast path ``edge``)."""
    counters = switch.fastpath_status()["edge"]
    assert isinstance(counters, dict)
    return counters


def vm1_key(driver: KernelNullDriver, frame: bytes) -> PortKey:
    key = entries.port_key_of(driver.port_ifindex("vm1") or 0, frame)
    assert key is not None
    return key


def test_an_established_connection_is_executed_by_the_kernel_with_pythons_bytes() -> None:
    (sa, a), (_sb, b) = kernel_host(PA_A), kernel_host(PA_B)
    data, reply = connect(a, b)
    entry = a.fast_path.executes(vm1_key(a, data))
    assert entry is not None
    assert entry.action == ACT_ENCAP
    assert entry.ifindex == a.uplinks["up0"]
    assert entry.mtu == a.mtus["up0"]
    assert entry.gens[0].slot == a.port_ifindex("vm1")
    # the outer headers the kernel pushes are those Python pushes for the same frame
    sa.engine.offload.enabled = False
    [python] = sa.engine.process("vm1", data)
    assert isinstance(python, Transmit)
    assert kernel_outer(entry, len(data)) + data == python.frame
    # on host B the reply goes out and VM1's frames come in through the kernel too
    reply_key = entries.port_key_of(b.port_ifindex("vm2") or 0, reply)
    assert reply_key is not None
    assert b.fast_path.executes(reply_key) is not None
    [decap] = [e for e in b.fast_path.all_entries().values() if e.action == ACT_DECAP_DELIVER]
    assert decap.ifindex == b.port_ifindex("vm2")


class WatchingDriver(KernelNullDriver):
    """Notes, for each frame sent to a VM or out of the uplink, how many kernel entries
    existed then."""

    def __init__(self) -> None:
        super().__init__()
        self.entries_when_delivered: list[int] = []
        self.entries_when_transmitted: list[int] = []

    def send_to_port(self, port: str, frames: Sequence[bytes]) -> None:
        self.entries_when_delivered += [len(self.fast_path.all_entries())] * len(frames)
        super().send_to_port(port, frames)

    def transmit(self, frames: Sequence[Transmit]) -> None:
        self.entries_when_transmitted += [len(self.fast_path.all_entries())] * len(frames)
        super().transmit(frames)


def test_the_frames_of_a_handshake_pass_with_no_entry_written_on_their_path() -> None:
    watching_a, watching_b = WatchingDriver(), WatchingDriver()
    (sa, a), (sb, b) = kernel_host(PA_A, driver=watching_a), kernel_host(PA_B, driver=watching_b)
    synack, c1, _c2 = half_connect(a, b)
    a.inject_from_uplink(synack)
    a.inject_from_port("vm1", c1.segment(0x10))  # the handshake's last ACK
    [ack] = a.take_transmitted()
    b.inject_from_uplink(ack.frame)
    # the handshake paired both hosts' connection: its frames left and reached the VMs
    # with nothing written, and nothing was written after them either
    assert watching_b.entries_when_transmitted == [0]
    assert watching_a.entries_when_delivered == [0]
    assert watching_b.entries_when_delivered == [0, 0]
    assert edge(sa).get("entries_written", 0) == edge(sb).get("entries_written", 0) == 0
    a.inject_from_port("vm1", c1.segment(0x18, b"GET /"))  # the connection's first data
    [tx] = a.take_transmitted()
    assert watching_a.entries_when_transmitted[-1] == 0  # it left first...
    assert len(a.fast_path.all_entries()) == 2  # ...then the round's end wrote the pair
    b.inject_from_uplink(tx.frame)
    assert watching_b.entries_when_delivered[-1] == 0
    assert len(b.fast_path.all_entries()) == 2
    assert a.fast_path.executes(vm1_key(a, c1.segment(0x10, b"data"))) is not None


def test_pairs_wait_for_the_end_of_the_round() -> None:
    (_sa, a), (sb, b) = kernel_host(PA_A), kernel_host(PA_B)
    synack = syn_reaches_b(a, b)
    for _ in range(2):  # the answer pairs, a retransmission is a frame past the pairing
        sb.from_port("vm2", [synack])
        sb.round_done()
    sb.from_port("vm2", [synack])  # another: a round's frames, before the driver is done
    sb.from_port("vm2", [synack])
    assert b.take_transmitted()
    assert b.fast_path.all_entries() == {}
    sb.round_done()
    assert len(b.fast_path.all_entries()) == 2  # VM2's encapsulation, its decapsulation


def test_a_connection_that_ends_with_its_handshake_costs_no_write() -> None:
    (sa, a), (_sb, b) = kernel_host(PA_A), kernel_host(PA_B)
    for sport in range(20):
        synack, _c1, _c2 = half_connect(a, b, 40000 + sport)
        a.inject_from_uplink(synack)
        a.take_sent("vm1")
    assert edge(sa).get("entries_written", 0) == 0
    sa.engine.expire(10_000.0)
    assert a.fast_path.all_entries() == {}


def test_a_commit_before_the_end_of_the_round_decides_what_waits() -> None:
    (_sa, a), (sb, b) = kernel_host(PA_A), kernel_host(PA_B)
    synack = syn_reaches_b(a, b)
    for _ in range(2):
        sb.from_port("vm2", [synack])
        sb.round_done()
    sb.from_port("vm2", [synack])  # the notes are due at the end of this round...
    sb.apply([c.AddRule("vm2", "ACL_NIC", "in-v4", DENY_ALL_IN)])  # ...a commit comes first
    sb.round_done()
    # VM1's frames to VM2 are denied now: no kernel entry may decapsulate them to VM2
    running = [k for k in b.fast_path.uplink_flows.entries
               if b.fast_path.executes(UplinkKey.unpack(k)) is not None]  # fmt: skip
    assert running == []


def test_an_acl_flip_stops_the_kernel_entry_before_apply_returns() -> None:
    (sa, a), (_sb, b) = kernel_host(PA_A), kernel_host(PA_B)
    data, _ = connect(a, b)
    key = vm1_key(a, data)
    assert a.fast_path.executes(key) is not None
    untouched = {k: v for k, v in a.fast_path.all_entries().items() if k != key.pack()}
    sa.apply([c.AddRule("vm1", "ACL_NIC", "out-v4", DENY_ALL_OUT)])
    assert a.fast_path.executes(key) is None  # gone (and its slot moved on)
    assert key.pack() not in a.fast_path.port_flows.entries
    a.inject_from_port("vm1", data)  # what the kernel misses, Python drops
    assert a.take_transmitted() == []
    for k, old in untouched.items():  # the decapsulation to VM1 still runs, rewritten
        assert a.fast_path.all_entries()[k].action == old.action


def test_a_policy_change_elsewhere_leaves_an_entry_untouched() -> None:
    (sa, a), (_sb, b) = kernel_host(PA_A), kernel_host(PA_B)
    data, _ = connect(a, b)
    key = vm1_key(a, data)
    writes = a.fast_path.port_flows.writes
    sa.apply([c.AddRule("vm5", "ACL_NIC", "out-v4", DENY_ALL_OUT)])
    assert a.fast_path.executes(key) is not None
    assert a.fast_path.port_flows.writes == writes


def test_a_moved_mapping_sends_the_established_flow_to_the_new_pa() -> None:
    (sa, a), (_sb, b) = kernel_host(PA_A), kernel_host(PA_B)
    data, _ = connect(a, b)
    key = vm1_key(a, data)
    new_pa = "192.168.1.30"
    a.inject_neighbor(new_pa, "02:00:00:00:0c:01")
    sa.apply([c.AddMapping(Mapping(VM2[4], VM2[2], new_pa, VM2[1], VM2[3]))])
    entry = a.fast_path.executes(key)
    assert entry is not None
    assert entry.header[30:34] == bytes([192, 168, 1, 30])


def test_removing_a_nic_removes_its_entries() -> None:
    (sa, a), (_sb, b) = kernel_host(PA_A), kernel_host(PA_B)
    connect(a, b)
    assert a.fast_path.all_entries()
    sa.apply([c.RemovePort("vm1")])
    assert a.fast_path.all_entries() == {}


def test_expiry_works_from_the_kernel_s_last_use() -> None:
    clock = [0.0]
    (sa, a), (_sb, b) = kernel_host(PA_A, clock=clock), kernel_host(PA_B)
    data, _ = connect(a, b)
    key = vm1_key(a, data).pack()
    idle = sa.engine.idle_timeout
    clock[0] = idle * 0.9
    sa.kernel_flows("vm1", fresh=True)
    kernel = sa._kernel
    assert kernel is not None
    kernel.kernel.monotonic_ns = lambda: int(clock[0] * 1e9)
    a.fast_path.port_flows.hit(key, 10, 1000, int(clock[0] * 1e9))  # busy in the kernel
    for uplink_key in a.fast_path.uplink_flows.entries:
        a.fast_path.uplink_flows.hit(uplink_key, 5, 500, int(clock[0] * 1e9))
    clock[0] = idle * 1.5
    assert sa.expire() == 0  # Python saw nothing for longer than the idle timeout
    assert sa.kernel_flows("vm1") == {k: (10, 1000) for k in sa.kernel_flows("vm1")}
    clock[0] = idle * 3
    assert sa.expire() > 0
    assert a.fast_path.all_entries() == {}


def test_a_restarted_switch_keeps_what_it_decides_again_and_deletes_the_rest() -> None:
    (_sa, a), (_sb, b) = kernel_host(PA_A), kernel_host(PA_B)
    data, _ = connect(a, b)
    stale = PortKey(a.port_ifindex("vm5") or 0, vm1_key(a, data).flow)  # nobody's flow
    a.fast_path.port_flows.entries[stale.pack()] = a.fast_path.port_flows.entries[
        vm1_key(a, data).pack()
    ]
    left = a.fast_path
    left.adopted = True
    kept = dict(left.all_entries())
    writes = left.port_flows.writes + left.uplink_flows.writes
    # the new process: same kernel maps, an empty engine programmed anew
    restarted = KernelNullDriver(left)
    restarted.ifindexes = dict(a.ifindexes)
    sw = HostSwitch(VfpEngine(clock=lambda: 0.0), restarted, expire_interval=None)
    sw.start()
    sw.set_provider_addresses([PaConfig(PA_A, 24, None, None, "up0")])
    sw.apply(vm_commands(PA_A))
    for name, vm_mac, _ip, _vsid, _rdid, vm_pa in ALL_VMS:
        if vm_pa == PA_A:
            restarted.inject_port(name, vm_mac)
    restarted.inject_neighbor(PA_B, MAC_B)
    assert left.all_entries() == kept  # nothing flushed while the engine was programmed
    counts = sw.revalidate_adopted(grace=0.0)
    assert counts == {"adopted": 3, "kept": 2, "rewritten": 0, "deleted": 1}
    assert stale.pack() not in left.port_flows.entries
    assert left.port_flows.writes + left.uplink_flows.writes == writes  # kept as they were
    assert left.executes(vm1_key(restarted, data)) is not None


def test_an_adopted_entry_waits_for_its_remote_pa_instead_of_being_deleted() -> None:
    (_sa, a), (_sb, b) = kernel_host(PA_A), kernel_host(PA_B)
    data, _ = connect(a, b)
    left = a.fast_path
    left.adopted = True
    kept = dict(left.all_entries())
    restarted = KernelNullDriver(left)
    restarted.ifindexes = dict(a.ifindexes)
    sw = HostSwitch(VfpEngine(clock=lambda: 0.0), restarted, expire_interval=None)
    sw.start()
    sw.set_provider_addresses([PaConfig(PA_A, 24, None, None, "up0")])
    sw.apply(vm_commands(PA_A))
    for name, vm_mac, _ip, _vsid, _rdid, vm_pa in ALL_VMS:
        if vm_pa == PA_A:
            restarted.inject_port(name, vm_mac)
    # host B's PA is not resolved yet: the engine cannot decide the encapsulation
    kernel = sw._kernel  # the switch's kernel side, asked step by step
    assert kernel is not None
    by_ifindex = {restarted.port_ifindex(p) or 0: p for p in sw.ports()}
    first = kernel.revalidate_adopted(by_ifindex, final=False)
    assert first["pending"] >= 1
    assert left.all_entries() == kept  # the undecided entries keep forwarding
    restarted.inject_neighbor(PA_B, MAC_B)
    second = kernel.revalidate_adopted(by_ifindex, final=False)
    assert "pending" not in second
    assert second["deleted"] == 0
    assert left.executes(vm1_key(restarted, data)) is not None


def test_the_uplink_entry_keys_the_frames_the_kernel_sees() -> None:
    (_sa, a), (_sb, b) = kernel_host(PA_A), kernel_host(PA_B)
    connect(a, b)
    [key] = [UplinkKey.unpack(k) for k in b.fast_path.uplink_flows.entries]
    assert (key.remote_pa, key.local_pa) == (bytes([192, 168, 1, 10]), bytes([192, 168, 1, 20]))
    assert (key.vsid, key.vlan_id) == (VM1[3], 0)
    assert (key.flow.src_port, key.flow.dst_port, key.flow.protocol) == (40000, 80, 6)


class LateDriver(KernelNullDriver):
    """vm1's veth is not on this host until ``here``: its ifindex is unknown till then."""

    def __init__(self) -> None:
        super().__init__()
        self.here = False

    def port_ifindex(self, port: str) -> int | None:
        if port == "vm1" and not self.here:
            return None
        return super().port_ifindex(port)


def test_a_migrated_vms_flows_reach_the_kernel_once_its_veth_arrives() -> None:
    (sa, a), (_sb, b) = kernel_host(PA_A), kernel_host(PA_B)
    data, reply = connect(a, b)
    states = sa.connection_states("vm1")
    late = LateDriver()
    sd, d = kernel_host(PA_A, driver=late)  # the destination: vm1's port programmed
    d.remove_port("vm1")  # ... and its veth still on the source
    assert sd.adopt_connections("vm1", states) == 1
    b.inject_from_port("vm2", reply)  # the peer's next segment reaches the destination first
    [tx] = b.take_transmitted()
    d.inject_from_uplink(tx.frame)
    assert d.take_sent("vm1") == [reply]
    assert d.fast_path.all_entries() == {}  # no entry can name vm1's interface yet
    late.here = True
    d.inject_port("vm1", VM1[1])
    entry = d.fast_path.executes(vm1_key(late, data))
    assert entry is not None
    assert entry.action == ACT_ENCAP
    assert [e.action for e in d.fast_path.all_entries().values()].count(ACT_DECAP_DELIVER) == 1
