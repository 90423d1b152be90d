"""A bandwidth reservation in a lab: the reserved VM keeps its share of a contended uplink.

h1's uplink is 100 Mbit/s wide (``uplink_mbps`` in the lab YAML, ``hnv host
--uplink-mbps``), so the uplink scheduler shapes it (vswitch.htb). ``resv`` reserves
60 Mbit/s (``outboundReservedValue`` through REST, the compiler, OVSDB and the agent);
``other`` reserves nothing. Both send iperf3 TCP to h2 at once, ``resv`` over one
connection and ``other`` over ``OTHER_STREAMS``: ``resv`` gets at least 90 % of its
reservation and ``other`` the rest. Then the reservation is lifted through REST: no
port of h1 reserves any more, so neither has a class (``set_reservation`` waits for
that) and both share the default class's one FIFO, where nothing decides the split but
TCP and the size of GSO frames: ``resv``'s one connection got anything from 14 to 71
of about 100 Mbit/s against four (nine runs, 2026-12-07), so only the link's bound is
asserted then. On the way, a reservation larger than the link is scaled down, and the NIC's
``configurationState`` reads ``Warning`` / ``ReservationScaled`` until it is lifted. The
hosts run the data path ``HNV_TEST_FASTPATH`` asks for: with the fast path the flows
are the kernel's (its tc program classifies), without it the Python switch's (its
frames are sent with the class's ``SO_PRIORITY``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lab_running import running_lab, topology_of

from openhnv.lab import orchestrator
from openhnv.lab.rest import instance_id
from openhnv.testing.contention import (
    RESERVED_VM,
    contend,
    nic_state,
    port_row,
    set_reservation,
    topology_text,
)
from openhnv.testing.datapath_mode import fastpath_mode
from openhnv.testing.polling import eventually

pytestmark = [pytest.mark.root, pytest.mark.datapath]

LINK_MBPS, RESERVED_MBPS = 100, 60
OVERSUBSCRIBED_MBPS = 150  # more than the link: scaled down, and the NIC says so
SECONDS, OMIT = 3, 1
KEPT = 0.90  # of the reservation, at least
LINK_SLACK = 1.10  # the link's shaper holds both within this of its rate
OTHER_STREAMS = 4  # against the reserved VM's one connection


@pytest.fixture(scope="module")
def lab() -> Iterator[orchestrator.RunningLab]:
    with running_lab(topology_of(topology_text(LINK_MBPS, RESERVED_MBPS))) as running:
        yield running


def test_a_reserved_vm_keeps_its_share_of_a_contended_uplink_and_loses_it_without(
    lab: orchestrator.RunningLab,
) -> None:
    row = port_row(lab, instance_id(lab.nics[RESERVED_VM]))
    assert (row["qos_reserved_mbps"], row["qos_rate_mbps"]) == (RESERVED_MBPS, RESERVED_MBPS)
    reserved = contend(lab, SECONDS, OMIT, OTHER_STREAMS)
    set_reservation(lab, OVERSUBSCRIBED_MBPS)
    warned = ("Warning", "ReservationScaled")
    eventually(lambda: nic_state(lab) == warned, f"{RESERVED_VM}'s NIC warns")
    set_reservation(lab, 0)
    eventually(lambda: nic_state(lab) == ("Success", "Success"), f"{RESERVED_VM}'s NIC fine")
    unreserved = contend(lab, SECONDS, OMIT, OTHER_STREAMS)
    print(f"\nreservation ({fastpath_mode()}): reserved {reserved.reserved:.1f} of"
          f" {RESERVED_MBPS}, other {reserved.other:.1f} Mbit/s on a {LINK_MBPS} Mbit/s link;"
          f" without: {unreserved.reserved:.1f} and {unreserved.other:.1f}")  # fmt: skip
    assert reserved.reserved >= KEPT * RESERVED_MBPS
    assert reserved.other >= 0.5 * (LINK_MBPS - RESERVED_MBPS)  # the rest is the other's
    assert reserved.total <= LINK_SLACK * LINK_MBPS
    assert unreserved.total <= LINK_SLACK * LINK_MBPS  # the split: luck (module docstring)
