"""The demo's pure parts: figure 8's tenants and the capture check, on decoded records."""

from __future__ import annotations

import dataclasses

import pytest

from openhnv.lab.capture import TunnelRecord
from openhnv.lab.demo import FIGURE8, Tenant, _tunnel_check, main, tenants
from openhnv.lab.errors import LabError
from openhnv.lab.topology import load


def test_figure8_has_two_tenants_with_the_seed_vsids() -> None:
    assert tenants(load(FIGURE8)) == [
        Tenant("contoso", 5001, "contoso-sql", "contoso-web"),
        Tenant("fabrikam", 6001, "fabrikam-sql", "fabrikam-web"),
    ]


def test_a_topology_without_sql_and_web_is_refused() -> None:
    topology = load(FIGURE8)
    renamed = tuple(dataclasses.replace(vm, name=f"vm{i}") for i, vm in enumerate(topology.vms))
    with pytest.raises(LabError, match="contoso: the demo needs a \\*-sql and a \\*-web VM"):
        tenants(dataclasses.replace(topology, vms=renamed))


def record(**changes: object) -> TunnelRecord:
    base = TunnelRecord(
        host="host2",
        encapsulation="vxlan",
        vlan=20,
        outer_src="192.168.2.20",
        outer_dst="192.168.1.10",
        vsid=5001,
        inner_src_mac="00:1d:d8:b7:00:02",
        inner_dst_mac="00:1d:d8:b7:00:01",
        inner_src="10.1.1.12",
        inner_dst="10.1.1.11",
        inner_protocol=6,
        inner_ttl=64,
        inner_sport=40000,
        inner_dport=1433,
        line="",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


CONTOSO = Tenant("contoso", 5001, "contoso-sql", "contoso-web")
WEB_PAS, SQL_PAS = ["192.168.2.20", "192.168.2.21"], ["192.168.1.10", "192.168.1.11"]


def test_the_capture_check_wants_the_tenant_vsid_pas_encapsulation_and_tag() -> None:
    def check(*records: TunnelRecord, encapsulation: str = "vxlan") -> bool:
        return _tunnel_check(
            list(records), CONTOSO, encapsulation, WEB_PAS, SQL_PAS, "10.1.1.11", 20
        ).ok

    assert check(record())
    assert not check()
    assert not check(record(vsid=6001))
    assert not check(record(outer_src="192.168.2.99"))
    assert not check(record(vlan=None))
    assert not check(record(), encapsulation="nvgre")
    assert not check(record(inner_dport=80))


def test_a_bad_lab_name_is_refused_before_anything_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--lab", "Bad-Name"]) == 2
    assert "not a valid lab name" in capsys.readouterr().err
