"""The QoS layer's outbound caps in the kernel's map: exactly the capped ports' buckets
(with their htb class), kept across an adoption when unchanged, and under HostSwitch
after the agent's commands."""

from __future__ import annotations

from fake_fastpath import FakeFastPath, FakeQos, KernelNullDriver
from vfp_frames import PA_A, VM1

from openhnv.vfp import commands as c
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.qos import BYTES_PER_MBIT, MAX_MBPS, QosSettings, burst_of
from openhnv.vswitch.fastpath.layout import QOS_OUTBOUND, QosBucket
from openhnv.vswitch.qdisc import class_priority
from openhnv.vswitch.qoskernel import KernelQos
from openhnv.vswitch.switch import HostSwitch, PaConfig

OUT_50 = QosSettings(outbound_max_mbps=50)
BOTH = QosSettings(outbound_max_mbps=50, inbound_max_mbps=20)
IFINDEX = {"vm1": 11, "vm5": 12}


def caps(mbps: int, ifindex: int) -> tuple[int, int, int]:
    return mbps * BYTES_PER_MBIT, burst_of(mbps), class_priority(ifindex)


def held(qos: FakeQos) -> dict[tuple[int, int], tuple[int, int, int]]:
    return {k: (b.rate, b.burst, b.priority) for k, b in qos.items().items()}


def test_sync_writes_a_bucket_per_port_with_an_outbound_cap_and_a_veth() -> None:
    qos = FakeQos()
    known = dict(IFINDEX)
    kernel = KernelQos(qos, known.get)
    in_only = QosSettings(inbound_max_mbps=20)  # inbound: the port's tbf, no bucket
    kernel.sync([("vm1", BOTH), ("vm5", in_only), ("vm9", OUT_50)])  # vm9: no veth yet
    assert held(qos) == {(11, QOS_OUTBOUND): caps(50, 11)}
    assert class_priority(11) == 0x1000B  # htb class 1:b
    known["vm9"] = 13  # its veth appeared: the next sync writes its bucket
    kernel.sync([("vm1", BOTH), ("vm9", OUT_50)])
    assert set(qos.items()) == {(11, QOS_OUTBOUND), (13, QOS_OUTBOUND)}


def test_changed_caps_rewrite_lifted_caps_and_gone_ports_delete() -> None:
    qos = FakeQos()
    kernel = KernelQos(qos, IFINDEX.get)
    kernel.sync([("vm1", BOTH), ("vm5", OUT_50)])
    kernel.sync([("vm1", QosSettings(outbound_max_mbps=10))])  # vm5 went, vm1 changed
    assert held(qos) == {(11, QOS_OUTBOUND): caps(10, 11)}
    kernel.sync([("vm1", QosSettings(inbound_max_mbps=10))])
    assert qos.items() == {}


def test_an_adopted_bucket_with_the_same_caps_keeps_its_state_and_a_stale_one_goes() -> None:
    qos = FakeQos()
    rate, burst, priority = caps(50, 11)
    running = QosBucket(0, priority, rate, burst, 0, tokens=1234, last_ns=99, drops=7,
                        drop_bytes=7000)  # fmt: skip
    qos.buckets[(11, QOS_OUTBOUND)] = running
    qos.buckets[(40, QOS_OUTBOUND)] = QosBucket(0, 0, 1, 1, 0, 0, 0, 0, 0)  # a port long gone
    kernel = KernelQos(qos, IFINDEX.get)  # a restarted switch on the adopted map
    kernel.sync([("vm1", OUT_50)])
    assert qos.items() == {(11, QOS_OUTBOUND): running}
    assert kernel.drops() == {"vm1": {"qos_outbound": 7}}


def test_the_switch_syncs_the_buckets_after_the_agents_commands() -> None:
    fast_path = FakeFastPath()
    driver = KernelNullDriver(fast_path)
    sw = HostSwitch(VfpEngine(clock=lambda: 0.0), driver, expire_interval=None)
    sw.start()
    try:
        sw.set_provider_addresses([PaConfig(PA_A, 24, None, None, "up0")])
        name, mac, ip, vsid, rdid = str(VM1[0]), str(VM1[1]), str(VM1[2]), 5001, str(VM1[4])
        sw.apply([c.AddPort(name, mac, vsid, rdid, (ip,), qos=OUT_50)])
        ifindex = driver.port_ifindex(name)
        assert set(fast_path.qos.items()) == {(ifindex, QOS_OUTBOUND)}
        assert sw.kernel_qos_drops() == {}
        sw.apply([c.AddPort(name, mac, vsid, rdid, (ip,))])
        assert fast_path.qos.items() == {}
    finally:
        sw.stop()


def test_a_capped_port_whose_veth_appears_later_gets_its_bucket_then() -> None:
    fast_path = FakeFastPath()
    driver = KernelNullDriver(fast_path)
    sw = HostSwitch(VfpEngine(clock=lambda: 0.0), driver, expire_interval=None)
    sw.start()
    try:
        name, mac, ip, vsid, rdid = str(VM1[0]), str(VM1[1]), str(VM1[2]), 5001, str(VM1[4])
        unknown = KernelQos(fast_path.qos, lambda _: None)
        sw._kernel.qos = unknown  # type: ignore[union-attr]
        sw.apply([c.AddPort(name, mac, vsid, rdid, (ip,), qos=OUT_50)])
        assert fast_path.qos.items() == {}
        unknown.ifindex_of = lambda _: 21  # the driver found the veth and reports it
        driver.inject_port(name, mac)
        assert set(fast_path.qos.items()) == {(21, QOS_OUTBOUND)}
    finally:
        sw.stop()


def test_a_reserved_port_without_a_cap_gets_a_bucket_for_its_class_only() -> None:
    qos = FakeQos()
    kernel = KernelQos(qos, IFINDEX.get)
    kernel.sync([("vm1", QosSettings(outbound_reserved_mbps=60))])
    assert held(qos) == {(11, QOS_OUTBOUND): caps(MAX_MBPS, 11)}  # never polices below 400G
