"""Two VMs of one host contend for its uplink: what each gets, with and without a reservation.

Shared by the root test (tests/integration/test_lab_reservation_root.py) and its bench
(bench/reservation.py). The lab: host ``h1`` whose uplink is ``uplink_mbps`` wide
(``hnv host --uplink-mbps``, so the uplink scheduler shapes it, vswitch.htb), VMs
``resv`` (reserving ``reserved_mbps``) and ``other`` on it, ``sink-a`` and ``sink-b`` on
``h2``; with ``third``, an unreserved VM ``third`` on h1 and its ``sink-c`` on h2 too
(two unreserved VMs beside a reservation: ``contend_unreserved``). The senders run
iperf3 TCP at once; each one's rate is given as the rate of the *outer* frames on the
uplink (what the link and the reservation count): iperf3's payload rate times (MSS +
inner and outer headers) / MSS.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from openhnv.host.control import call
from openhnv.lab import orchestrator
from openhnv.lab.resources import nic_resource
from openhnv.lab.rest import ControllerClient, instance_id
from openhnv.testing.polling import eventually

RESERVED_VM, OTHER_VM, THIRD_VM = "resv", "other", "third"
SINKS = {RESERVED_VM: ("sink-a", "10.9.2.20", 5311), OTHER_VM: ("sink-b", "10.9.2.21", 5312),
         THIRD_VM: ("sink-c", "10.9.2.22", 5313)}  # fmt: skip
INNER_HEADERS = 14 + 20 + 32  # Ethernet, IPv4, TCP with timestamps: per segment
OUTER_HEADERS = {"vxlan": 14 + 20 + 8 + 8, "nvgre": 14 + 20 + 8}  # what the host adds
DEFAULT_MSS = 1448
IPERF_GRACE = 30  # seconds an iperf3 client may take beyond its run


def topology_text(
    uplink_mbps: int, reserved_mbps: int, encapsulation: str = "vxlan", third: bool = False
) -> str:
    """The lab's YAML: h1's uplink of ``uplink_mbps``, ``resv`` reserving ``reserved_mbps``;
    ``third``: the second unreserved VM and its sink."""
    qos = f", qos: {{outbound_reserved_mbps: {reserved_mbps}}}" if reserved_mbps else ""
    more = (f"  - {{name: {THIRD_VM}, host: h1, virtual_network: blue, subnet: s,"
            " ip: 10.9.2.12}\n  - {name: sink-c, host: h2, virtual_network: blue, subnet: s,"
            " ip: 10.9.2.22}\n") if third else ""  # fmt: skip
    return f"""
name: placeholder
encapsulation: {encapsulation}
pa_subnets:
  - {{name: pa, prefix: 192.168.63.0/24, gateway: 192.168.63.1}}
hosts:
  - {{name: h1, pa_subnet: pa, uplinks: 1, uplink_mbps: {uplink_mbps}}}
  - {{name: h2, pa_subnet: pa, uplinks: 1}}
virtual_networks:
  - name: blue
    address_space: 10.9.0.0/16
    subnets: [{{name: s, prefix: 10.9.2.0/24, vsid: 7202}}]
vms:
  - {{name: {RESERVED_VM}, host: h1, virtual_network: blue, subnet: s, ip: 10.9.2.10{qos}}}
  - {{name: {OTHER_VM}, host: h1, virtual_network: blue, subnet: s, ip: 10.9.2.11}}
  - {{name: sink-a, host: h2, virtual_network: blue, subnet: s, ip: 10.9.2.20}}
  - {{name: sink-b, host: h2, virtual_network: blue, subnet: s, ip: 10.9.2.21}}
{more}"""


@dataclass(frozen=True, slots=True)
class Shares:
    """What each sender got, in Mbit/s of outer frames on h1's uplink."""

    reserved: float
    other: float

    @property
    def total(self) -> float:
        return self.reserved + self.other


def outer_mbps(report: dict[str, Any], encapsulation: str) -> float:
    """The outer frame rate of an iperf3 TCP report (its receiver's payload rate)."""
    payload = float(report["end"]["sum_received"]["bits_per_second"]) / 1e6
    mss = int(report["start"].get("tcp_mss_default") or DEFAULT_MSS)
    return payload * (mss + INNER_HEADERS + OUTER_HEADERS[encapsulation]) / mss


def contend(
    lab: orchestrator.RunningLab, seconds: int, omit: int, other_streams: int = 1
) -> Shares:
    """Both VMs send iperf3 TCP to their sinks at once for ``seconds`` (the first
    ``omit`` left out: slow start), the other VM over ``other_streams`` connections;
    what each got."""
    got = send_at_once(lab, {RESERVED_VM: 1, OTHER_VM: other_streams}, seconds, omit)
    return Shares(got[RESERVED_VM], got[OTHER_VM])


def contend_unreserved(
    lab: orchestrator.RunningLab, seconds: int, omit: int, third_streams: int = 1
) -> Shares:
    """``other`` (one iperf3 TCP connection) and ``third`` (``third_streams``) of a lab
    with ``third`` send at once, ``resv`` nothing: what each got (``other`` as
    ``reserved``)."""
    got = send_at_once(lab, {OTHER_VM: 1, THIRD_VM: third_streams}, seconds, omit)
    return Shares(got[OTHER_VM], got[THIRD_VM])


def send_at_once(
    lab: orchestrator.RunningLab, streams: dict[str, int], seconds: int, omit: int
) -> dict[str, float]:
    """Each VM of ``streams`` sends iperf3 TCP to its sink (``SINKS``) over that many
    connections, all at once for ``seconds`` (the first ``omit`` left out: slow
    start); the outer Mbit/s each got."""
    servers = [
        subprocess.Popen(["ip", "netns", "exec", lab.vm_namespace(sink), "iperf3", "-s", "-1",
                          "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for sink, _, port in (SINKS[vm] for vm in streams)
    ]  # fmt: skip
    try:
        time.sleep(0.5)  # the servers listen
        clients = {
            vm: subprocess.Popen(["ip", "netns", "exec", lab.vm_namespace(vm), "iperf3", "-c",
                                  address, "-p", str(port), "-J", "-t", str(seconds), "-O",
                                  str(omit), "-P", str(streams[vm])],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            for vm, (_, address, port) in ((vm, SINKS[vm]) for vm in streams)
        }  # fmt: skip
        got: dict[str, float] = {}
        for vm, process in clients.items():
            out, _ = process.communicate(timeout=seconds + omit + IPERF_GRACE)
            report = json.loads(out)
            if "error" in report:
                raise RuntimeError(f"iperf3 from {vm}: {report['error']}")
            got[vm] = outer_mbps(report, lab.topology.encapsulation)
        return got
    finally:
        for process in servers:
            if process.poll() is None:
                process.kill()
            process.wait()


def set_reservation(lab: orchestrator.RunningLab, mbps: int) -> None:
    """PUT ``resv``'s NIC with ``outboundReservedValue`` = ``mbps``; wait for h1 to
    program it (its port row shows the reservation, and its class when non-zero)."""
    resource = nic_resource(lab.topology.vm(RESERVED_VM))
    props = resource.body["properties"]
    props["portSettings"]["qosSettings"] = {"outboundReservedValue": mbps}
    props["privateMacAddress"] = lab.nic_mac(RESERVED_VM).replace(":", "")
    props["privateMacAllocationMethod"] = "Static"
    client = ControllerClient.connect(lab.controller_url, access=lab.access)
    try:
        client.put(resource)
    finally:
        client.close()
    port = instance_id(lab.nics[RESERVED_VM])

    def programmed() -> bool:
        row = port_row(lab, port)
        return row.get("qos_reserved_mbps") == mbps and ("qos_class" in row) == bool(mbps)

    eventually(programmed, f"h1 programs {RESERVED_VM} reserving {mbps} Mbit/s")


def nic_state(lab: orchestrator.RunningLab) -> tuple[str, str]:
    """The status and code of ``resv``'s NIC's ``configurationState`` (a REST GET)."""
    client = ControllerClient.connect(lab.controller_url, access=lab.access)
    try:
        doc = client.get(str(lab.nics[RESERVED_VM]["resourceRef"]))
    finally:
        client.close()
    state = doc["properties"].get("configurationState") or {}
    info = (state.get("detailedInfo") or [{}])[0]
    return str(state.get("status")), str(info.get("code"))


def port_row(lab: orchestrator.RunningLab, port: str) -> dict[str, Any]:
    """``hnv vfp list-ports``' row of ``port`` on h1 ({}: none)."""
    rows: list[dict[str, Any]] = call(lab.host_state_dir("h1"), "list-ports")
    return next((row for row in rows if row.get("name") == port), {})
