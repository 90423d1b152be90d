"""Random datacenters through the real compiler, planner and engine, every delivery
checked against the isolation oracle of ``openhnv.testing.fuzz.isolation`` (written from
the design's ACL and routing rules, not from the engine). ``make fuzz`` runs it long."""

from __future__ import annotations

import dataclasses
import os
import random

import pytest

from openhnv.testing.fuzz import isolation as iso

DATACENTERS = int(os.environ.get("HNV_ISOLATION_DATACENTERS", "40"))


@pytest.mark.parametrize("seed", range(DATACENTERS))
def test_every_delivery_is_one_the_oracle_allows(seed: int) -> None:
    rnd = random.Random(seed)
    dc = iso.random_datacenter(rnd)
    outcome = iso.probe(dc, rnd)
    assert outcome.cross_tenant == 0
    assert outcome.mismatches == ()


def _two_tenants(acls: dict[str, tuple[iso.AclRule, ...]], nic_acl: str | None) -> iso.Datacenter:
    nics = (
        iso.Nic("a", "t1", iso.SUBNETS[0], "10.1.1.11", "00:1d:d8:0a:00:01", "host1", None),
        iso.Nic("b", "t1", iso.SUBNETS[1], "10.1.2.12", "00:1d:d8:0a:00:02", "host2", nic_acl),
        iso.Nic("c", "t2", iso.SUBNETS[1], "10.1.2.12", "00:1d:d8:0a:00:03", "host1", None),
    )
    subnet_acls: dict[tuple[str, str], str | None] = {
        (t, s): None for t in ("t1", "t2") for s in iso.SUBNETS
    }
    return iso.Datacenter(("host1", "host2"), ("t1", "t2"), subnet_acls, acls, nics)


def test_the_oracle_answers_as_the_design_says() -> None:
    deny_sql = iso.AclRule("Inbound", False, 100, "TCP", "*", "*", "1433")
    allow_all = iso.AclRule("Inbound", True, 200, "All", "*", "*", "*")
    dc = _two_tenants({"acl": (deny_sql, allow_all)}, "acl")
    udp = iso.Probe("a", "b", "UDP", 20001, 1433)
    tcp = iso.Probe("a", "b", "TCP", 20002, 1433)
    assert iso.expected(dc, udp) == "b"  # the deny names TCP only
    assert iso.expected(dc, tcp) is None  # the lower number wins
    # the other tenant's VM with the same address is never the receiver
    assert iso.expected(dc, iso.Probe("a", "c", "UDP", 20003, 53)) == "b"
    assert iso.expected(dc, iso.Probe("c", "a", "UDP", 20004, 53)) is None


def _without_acls(dc: iso.Datacenter, p: iso.Probe) -> str | None:
    """A wrong oracle: it forgets every ACL."""
    open_dc = iso.Datacenter(
        dc.hosts, dc.tenants, dict.fromkeys(dc.subnet_acls), {},
        tuple(dataclasses.replace(n, acl=None) for n in dc.nics),
    )  # fmt: skip
    return iso.expected(open_dc, p)


def test_a_wrong_oracle_is_caught() -> None:
    """The comparison has teeth: an oracle that ignores the ACLs disagrees with the engine."""
    wrong = 0
    for seed in range(10):
        rnd = random.Random(seed)
        wrong += len(iso.probe(iso.random_datacenter(rnd), rnd, _without_acls).mismatches)
    assert wrong > 0
