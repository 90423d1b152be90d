"""The XDP meter on a VM port: a burst over the port's rate is dropped in XDP, before
the switch's ring, and counted with its reason; frames under the rate pass.

One host namespace with one VM port (``openhnv.testing.namespaces.host_with_vms``,
removed afterwards even on failure) and a ``LinuxDriver`` without the kernel fast path
(its meter-only mode) with ``xdp_meter``, under a sink that records what the port's
ring delivers. With the XDP meter the ring has no socket filter at all: whatever the
XDP program lets through reaches the sink, so what the sink lacks was dropped in XDP.
The VM sends frames built by ``openhnv.testing.flood`` through an AF_PACKET socket of
its own namespace.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator, Mapping

import pytest

from openhnv.lab import netns
from openhnv.testing.flood import Endpoints, SynFactory, broadcast_frame
from openhnv.testing.namespaces import VM_INTERFACE, VmPort, host_with_vms
from openhnv.testing.polling import eventually
from openhnv.vfp.limits import NO_LIMITS, PortLimits
from openhnv.vswitch.afpacket import AfPacketSocket
from openhnv.vswitch.fastpath.attach import attached_xdp
from openhnv.vswitch.fastpath.probe import probe
from openhnv.vswitch.linux import LinuxDriver
from openhnv.vswitch.team import Placement

pytestmark = [pytest.mark.root, pytest.mark.fastpath]

VM = VmPort("v1", "port-v1", "00:1d:d8:07:00:11", "10.1.1.11/24")
PEER_MAC = "00:1d:d8:07:00:12"
PEER_IP = "10.1.1.12"
BURST = 10  # SYNs the port may send back to back
SENT = 50
# one SYN a 100 s once the burst is spent: nothing refills within the test
LIMITS = PortLimits(new_flow_rate=0.01, new_flow_burst=BURST, broadcast_rate=0.01,
                    broadcast_burst=BURST, arp_rate=0.01, arp_burst=BURST)  # fmt: skip
SYN_FLAGS_OFFSET = 14 + 20 + 13


class Recorder:
    """A FrameSink that keeps what VM ports sent."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.lock = threading.Lock()

    def from_port(self, port: str, frames: list[bytes]) -> float:
        with self.lock:
            self.frames += frames
        return 0.0

    def syns(self) -> int:
        with self.lock:
            return sum(1 for f in self.frames if len(f) > SYN_FLAGS_OFFSET
                       and f[12:14] == b"\x08\x00" and f[23] == 6
                       and f[SYN_FLAGS_OFFSET] == 0x02)  # fmt: skip

    def count(self, frame: bytes) -> int:
        with self.lock:
            return self.frames.count(frame)

    def from_uplink(self, frames: list[bytes]) -> None: ...
    def round_done(self) -> None: ...
    def port_added(self, port: str, mac: str) -> None: ...
    def port_removed(self, port: str) -> None: ...
    def pa_neighbor(self, address: str, mac: str | None) -> None: ...

    def team_changed(self, placement: Mapping[str, Placement], carrier: Mapping[str, bool]) -> None:
        return None


@pytest.fixture
def host() -> Iterator[tuple[str, str, LinuxDriver, Recorder]]:
    problem = probe()
    if problem is not None:
        pytest.skip(f"no eBPF object here: {problem}")
    with host_with_vms("xm", [VM]) as made:
        driver = netns.run_in(made.host, LinuxDriver, fastpath="off", xdp_meter=True)
        sink = Recorder()
        try:
            driver.open(sink)
            eventually(lambda: "p1" in netns.run_in(made.host, _ports, driver), "port p1")
            yield made.host, made.vms["v1"], driver, sink
        finally:
            driver.close()


def _ports(driver: LinuxDriver) -> dict[str, str]:
    return {ifname: port for port, ifname in driver.port_interfaces().items()}


def _ends() -> Endpoints:
    mac = bytes.fromhex(VM.mac.replace(":", ""))
    peer = bytes.fromhex(PEER_MAC.replace(":", ""))
    own = ipaddress.IPv4Interface(VM.address).ip.packed
    return Endpoints(mac, own, peer, ipaddress.IPv4Address(PEER_IP).packed)


def _send(vm_ns: str, frames: list[bytes]) -> None:
    sock = netns.run_in(vm_ns, AfPacketSocket, VM_INTERFACE)
    try:
        for frame in frames:
            sock.send(frame)
    finally:
        sock.close()


def test_a_burst_over_the_rate_is_dropped_in_xdp_and_counted(
    host: tuple[str, str, LinuxDriver, Recorder],
) -> None:
    host_ns, vm_ns, driver, sink = host
    driver.set_port_limits(LIMITS)
    eventually(lambda: netns.run_in(host_ns, attached_xdp, "p1") != 0, "the XDP meter on p1")
    # the driver notes the port once the attach returned: a moment after the kernel shows it
    eventually(lambda: driver.metering_status()["xdp_ports"] == 1, "the driver counts p1")
    factory = SynFactory(_ends(), spoof=0.5)
    syns = [factory.next() for _ in range(SENT)]
    ack = syns[0][:SYN_FLAGS_OFFSET] + b"\x10" + syns[0][SYN_FLAGS_OFFSET + 1 :]
    _send(vm_ns, [*syns, ack])

    eventually(lambda: sink.count(ack) == 1, "an ACK (no limit meters it) passed")
    eventually(lambda: sink.syns() == BURST, f"the {BURST} SYNs under the rate passed")
    assert driver.kernel_limit_drops() == {"port-v1": {"new_flow_rate": SENT - BURST}}
    meter_only = driver._metering.meter_only  # the object loaded for the meter: its counters
    assert meter_only is not None
    assert meter_only.counters.read()["drop_new_flow_rate"] == SENT - BURST

    # without limits the XDP program goes: a SYN burst reaches the ring whole
    driver.set_port_limits(NO_LIMITS)
    eventually(lambda: netns.run_in(host_ns, attached_xdp, "p1") == 0, "the XDP meter gone")
    more = [factory.next() for _ in range(SENT)]
    _send(vm_ns, more)
    eventually(lambda: sink.syns() == BURST + SENT, "every SYN passed")


def test_the_xdp_meter_goes_with_its_port(host: tuple[str, str, LinuxDriver, Recorder]) -> None:
    host_ns, vm_ns, driver, _ = host
    driver.set_port_limits(LIMITS)
    eventually(lambda: netns.run_in(host_ns, attached_xdp, "p1") != 0, "the XDP meter on p1")
    _send(vm_ns, [broadcast_frame(_ends())] * (BURST + 5))
    eventually(lambda: driver.kernel_limit_drops() == {"port-v1": {"broadcast_rate": 5}},
               "5 broadcasts over the rate")  # fmt: skip
    netns.set_alias(host_ns, "p1", "not a port")
    eventually(lambda: netns.run_in(host_ns, attached_xdp, "p1") == 0, "the XDP meter gone")
    assert driver.metering_status()["xdp_ports"] == 0


def test_a_switch_without_the_xdp_meter_takes_off_one_an_earlier_switch_left(
    host: tuple[str, str, LinuxDriver, Recorder],
) -> None:
    host_ns, _, driver, _ = host
    driver.set_port_limits(LIMITS)
    eventually(lambda: netns.run_in(host_ns, attached_xdp, "p1") != 0, "the XDP meter on p1")
    driver.close()
    assert netns.run_in(host_ns, attached_xdp, "p1") != 0  # stays, as the tc programs do
    after = netns.run_in(host_ns, LinuxDriver, fastpath="off")
    try:
        after.open(Recorder())
        after.set_port_limits(LIMITS)
        eventually(lambda: netns.run_in(host_ns, attached_xdp, "p1") == 0, "the old XDP gone")
        assert after.metering_status()["filter"] == "hnv_sk_meter (without the fast path)"
    finally:
        after.close()
