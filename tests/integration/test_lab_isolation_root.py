"""The isolation oracle on a real lab: one random datacenter (tenants with overlapping
addresses, ACLs on subnets and NICs) brought up in namespaces, probed with UDP and TCP
from every VM to every address, each delivery compared with ``isolation.expected_at``
(written from the design's rules). ``make fuzz`` runs it over more and bigger ones
(fuzz/isolation_lab.py)."""

from __future__ import annotations

import random

import pytest
from lab_running import running_lab, unique_name

from openhnv.lab.topology import from_document
from openhnv.testing.fuzz import isolation as iso
from openhnv.testing.fuzz.isolation_lab import LAB_SIZE, probe_lab, topology

pytestmark = [pytest.mark.root, pytest.mark.datapath]

SEED = 17  # 6 VMs on 2 hosts, 2 tenants sharing addresses, 4 subnet and 3 NIC ACLs


def test_a_random_datacenter_delivers_only_what_the_oracle_allows() -> None:
    dc = iso.random_datacenter(random.Random(SEED), LAB_SIZE)
    addresses = [n.ip for n in dc.nics]
    assert len(set(addresses)) < len(addresses)  # tenants share addresses
    assert any(dc.subnet_acls.values())
    assert any(n.acl for n in dc.nics)
    with running_lab(from_document(topology(dc, unique_name()))) as lab:
        outcome = probe_lab(dc, lab, SEED)
    print(outcome.figures())
    assert outcome.cross_tenant == 0
    assert outcome.mismatches == ()
    assert 0 < outcome.delivered < outcome.probes  # some allowed, some denied
