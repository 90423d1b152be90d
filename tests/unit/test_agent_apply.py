"""Units applied to a HostSwitch on a NullDriver: all in one go, and a refused unit
blames its row and blocks nothing."""

from __future__ import annotations

from openhnv.agent.apply import apply_units
from openhnv.agent.planner import EMPTY_PLAN, Unit, changes, plan
from openhnv.agent.rows import read_catalog
from openhnv.testing import snapshots as nb
from openhnv.testing.southbound import host_rows, port_of
from openhnv.vfp import commands as c
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.spaces import Mapping
from openhnv.vswitch.null import NullDriver
from openhnv.vswitch.switch import HostSwitch


def switch() -> HostSwitch:
    sw = HostSwitch(VfpEngine(), NullDriver(), expire_interval=None)
    sw.start()
    return sw


def test_every_unit_applies_in_one_go() -> None:
    sw = switch()
    rows = host_rows(nb.figure8())
    units = changes(EMPTY_PLAN, plan(read_catalog(rows)))
    assert apply_units(sw, units) == []
    assert {p["name"] for p in sw.inspect(lambda e: e.listing.ports())} == {
        port_of(rows, "contoso-sql"),
        port_of(rows, "fabrikam-sql"),
    }
    assert len(sw.inspect(lambda e: e.listing.mappings())) == 4


def test_a_refused_unit_blames_its_row_and_the_others_still_apply() -> None:
    sw = switch()
    rows = host_rows(nb.figure8())
    units = changes(EMPTY_PLAN, plan(read_catalog(rows)))
    # the MAC of Contoso SQL in VSID 5001 claimed by another routing domain: refused
    clash = Mapping("other-rdid", "10.1.1.99", "192.168.9.9", "00:1d:d8:07:00:11", 5001)
    bad_mapping = Unit(
        "Ucast_Macs_Remote", "5001/00:1d:d8:07:00:11/10.1.1.99", (c.AddMapping(clash),)
    )
    # a port whose MAC is another port's: refused, and removed entirely
    sql = port_of(rows, "contoso-sql")
    bad_port = Unit(
        "Physical_Port",
        "copy",
        (
            c.AddPort("copy", "00:1d:d8:07:00:99", 5001, nb.CONTOSO_RDID),
            c.AddPort("copy", "00:1d:d8:07:00:11", 5001, nb.CONTOSO_RDID),
        ),
    )
    refused = apply_units(sw, [*units, bad_mapping, bad_port])
    assert [(u.table, u.key) for u, _ in refused] == [
        ("Ucast_Macs_Remote", "5001/00:1d:d8:07:00:11/10.1.1.99"),
        ("Physical_Port", "copy"),
    ]
    assert all(reason.startswith("refused by the switch") for _, reason in refused)
    ports = {p["name"] for p in sw.inspect(lambda e: e.listing.ports())}
    assert ports == {sql, port_of(rows, "fabrikam-sql")}
    assert len(sw.inspect(lambda e: e.listing.mappings())) == 4
