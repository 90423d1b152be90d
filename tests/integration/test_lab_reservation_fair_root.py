"""Beside a reservation, two unreserved VMs share the rest of a contended uplink fairly.

h1's uplink is 100 Mbit/s wide (``uplink_mbps``) and ``resv`` reserves 20 Mbit/s
(idle here), so the uplink scheduler builds its htb tree (vswitch.htb) and gives every
port of h1 a class of its own: ``other`` and ``third`` reserve nothing and each get an
equal share of what the reservation leaves, up to the link. Both send one iperf3 TCP
connection to h2 at once, then ``third`` over ``MANY_STREAMS``: htb's round robin
between their classes keeps each port at a fair part of the pair's total, however many
connections it has. (In one shared FIFO, one single flow took what the other left once:
8.1 against 93.8 Mbit/s; and four connections take most of it from one, as
test_lab_reservation_root.py shows without a reservation.) The hosts run the data path
``HNV_TEST_FASTPATH`` asks for: with the fast path the kernel's tc program names each
port's class (``skb->priority``), without it the Python switch sends with its
``SO_PRIORITY``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lab_running import running_lab, topology_of

from openhnv.lab import orchestrator
from openhnv.lab.rest import instance_id
from openhnv.testing import contention
from openhnv.testing.contention import OTHER_VM, RESERVED_VM, THIRD_VM, port_row
from openhnv.testing.datapath_mode import fastpath_mode
from openhnv.testing.polling import eventually

pytestmark = [pytest.mark.root, pytest.mark.datapath]

LINK_MBPS, RESERVED_MBPS = 100, 20
SHARE_MBPS = (LINK_MBPS - RESERVED_MBPS - 1) / 2  # the default class keeps its floor
SECONDS, OMIT = 3, 1
FAIR = 0.30  # of the pair's total, each port at least (generous: a shared FIFO gave 8 %)
MANY_STREAMS = 4  # in one shared FIFO, four connections against one take about 80 %
LINK_SLACK = 1.10  # the link's shaper holds the pair within this of its rate
BUSY = 0.5  # of the link, the pair at least: borrowing works


@pytest.fixture(scope="module")
def lab() -> Iterator[orchestrator.RunningLab]:
    text = contention.topology_text(LINK_MBPS, RESERVED_MBPS, third=True)
    with running_lab(topology_of(text)) as running:
        yield running


def test_two_unreserved_vms_share_fairly_beside_a_reservation(
    lab: orchestrator.RunningLab,
) -> None:
    rows = {vm: instance_id(lab.nics[vm]) for vm in (RESERVED_VM, OTHER_VM, THIRD_VM)}
    eventually(lambda: all("qos_class" in port_row(lab, p) for p in rows.values()),
               "every port of h1 has its class")  # fmt: skip
    assert port_row(lab, rows[RESERVED_VM])["qos_rate_mbps"] == RESERVED_MBPS
    for vm in (OTHER_VM, THIRD_VM):
        row = port_row(lab, rows[vm])
        assert (row["qos_rate_mbps"], row["qos_ceil_mbps"]) == (SHARE_MBPS, LINK_MBPS), vm
    for third_streams in (1, MANY_STREAMS):
        shares = contention.contend_unreserved(lab, SECONDS, OMIT, third_streams)
        print(f"\nunreserved pair ({fastpath_mode()}): {OTHER_VM} {shares.reserved:.1f} (1"
              f" connection), {THIRD_VM} {shares.other:.1f} Mbit/s ({third_streams}) on"
              f" a {LINK_MBPS} Mbit/s link ({RESERVED_VM} reserving {RESERVED_MBPS})")  # fmt: skip
        assert shares.total <= LINK_SLACK * LINK_MBPS
        assert shares.total >= BUSY * LINK_MBPS
        assert min(shares.reserved, shares.other) >= FAIR * shares.total, third_streams
