"""The uplink scheduler's classes follow the VM ports of a Linux driver (vswitch.htb).

A host whose VM reserves gives every port its own htb class on the uplink; a port that
appears gets one, a port that goes takes its class along, and the reserved port's class
stays as it was. Lab namespaces ``hnv-lx…``, removed afterwards even on failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openhnv.lab import netns
from openhnv.testing.dataplane import DataplaneLab, document, lab_name, port_id, wait_ready
from openhnv.testing.polling import eventually
from openhnv.vfp.qos import QosSettings
from openhnv.vswitch.htb import DEFAULT_CLASS, LINK_CLASS
from openhnv.vswitch.switch import HostSwitch

pytestmark = [pytest.mark.root, pytest.mark.datapath]

RESERVED_MBPS = 2_000
LATE_PORT, LATE_MAC = "nic-late", "02:00:00:00:02:01"


def classes(host_ns: str) -> dict[str, str]:
    """classid -> its ``tc class show`` line, of the host's uplink up0."""
    shown = netns.exec_in(host_ns, ["tc", "class", "show", "dev", "up0"]).stdout
    return {line.split()[2]: line for line in shown.splitlines() if line.startswith("class htb")}


def port_class(switch: HostSwitch, port: str) -> dict[str, Any]:
    """``port``'s class as the driver reports it ({}: none)."""
    ports = switch.qos_status().get("ports")
    found = ports.get(port) if isinstance(ports, dict) else None
    return found if isinstance(found, dict) else {}


def test_every_port_has_a_class_beside_a_reservation_and_it_follows_the_port(
    tmp_path: Path,
) -> None:
    reserving = QosSettings(outbound_reserved_mbps=RESERVED_MBPS)
    topology = document(lab_name("lc"), vms=[("v1", "h1")])
    with DataplaneLab(topology, tmp_path, qos=reserving) as lab:
        switch = lab.start_switch("h1")
        wait_ready(switch, 1, [])
        host = lab.host_ns("h1")
        v1 = eventually(lambda: port_class(switch, port_id("v1")), "v1's class")
        reserved = str(v1["class"])
        before = classes(host)
        assert set(before) == {f"1:{LINK_CLASS:x}", f"1:{DEFAULT_CLASS:x}", reserved}
        netns.exec_in(host, ["ip", "link", "add", "late0", "type", "veth", "peer", "name",
                             "late1"])  # fmt: skip
        netns.exec_in(host, ["ip", "link", "set", "late0", "alias",
                             f"openhnv-port {LATE_PORT} {LATE_MAC}"])  # fmt: skip
        late = eventually(lambda: port_class(switch, LATE_PORT), "the late port's class")
        assert late["rate_mbps"] == late["ceil_mbps"] - RESERVED_MBPS - 1  # the default's floor
        assert str(late["class"]) in classes(host)
        assert classes(host)[reserved] == before[reserved]  # untouched
        netns.exec_in(host, ["ip", "link", "del", "late0"])
        eventually(lambda: not port_class(switch, LATE_PORT), "the late port gone")
        eventually(lambda: str(late["class"]) not in classes(host), "its class gone")
        assert classes(host)[reserved] == before[reserved]


BURST = 6  # ports that appear at once, as when a host starts its VMs


def test_ports_that_come_at_once_end_with_a_class_each_the_reservation_untouched(
    tmp_path: Path,
) -> None:
    """The htb plans run off the polling thread and coalesce: six ports added in a burst
    end with one class each, the unreserved ones sharing what the reservation leaves
    equally; taken away at once, only the reserved port's class stays."""
    reserving = QosSettings(outbound_reserved_mbps=RESERVED_MBPS)
    topology = document(lab_name("lb"), vms=[("v1", "h1")])
    with DataplaneLab(topology, tmp_path, qos=reserving) as lab:
        switch = lab.start_switch("h1")
        wait_ready(switch, 1, [])
        host = lab.host_ns("h1")
        reserved = str(eventually(lambda: port_class(switch, port_id("v1")), "v1's class")["class"])
        before = classes(host)
        late = [(f"nic-burst{i}", f"02:00:00:00:03:{i:02x}") for i in range(BURST)]
        for i, (port, mac) in enumerate(late):
            netns.exec_in(host, ["ip", "link", "add", f"burst{i}a", "type", "veth", "peer",
                                 "name", f"burst{i}b"])  # fmt: skip
            netns.exec_in(host, ["ip", "link", "set", f"burst{i}a", "alias",
                                 f"openhnv-port {port} {mac}"])  # fmt: skip

        def every_class() -> list[dict[str, Any]]:
            found = [port_class(switch, port) for port, _ in late]
            return found if all(found) else []

        found = eventually(every_class, "a class for every port of the burst")
        link = found[0]["ceil_mbps"]
        share = (link - RESERVED_MBPS - 1) / BURST  # the default class keeps its floor
        assert [c["rate_mbps"] for c in found] == pytest.approx([share] * BURST, abs=0.01)
        wanted = {*before, *(str(c["class"]) for c in found)}
        eventually(lambda: set(classes(host)) == wanted, "the burst's classes in the kernel")
        assert classes(host)[reserved] == before[reserved]
        for i in range(BURST):
            netns.exec_in(host, ["ip", "link", "del", f"burst{i}a"])
        eventually(lambda: set(classes(host)) == set(before), "only the first classes left")
        assert classes(host)[reserved] == before[reserved]
