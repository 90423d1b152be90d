"""The compartment's ruleset: what it forwards, NATs and drops (checked by nft -c when
the tool is there)."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess

import pytest

from openhnv.gateway.nft import Firewall, NatLeg, ruleset
from openhnv.gateway.rows import PortMapping

SPACE = (ipaddress.IPv4Network("10.1.0.0/16"),)
PUBLIC = ipaddress.IPv4Address("203.0.113.10")
MAPPING = PortMapping("tcp", 8080, ipaddress.IPv4Address("10.1.1.11"), 80)


def test_nat_rewrites_vnet_sources_to_the_public_address_and_drops_unsolicited_inbound() -> None:
    text = ruleset(Firewall("eth0", SPACE, NatLeg("ext0", PUBLIC)))
    assert 'oifname "ext0" ip saddr 10.1.0.0/16 snat ip to 203.0.113.10' in text
    assert 'iifname "eth0" oifname "ext0" accept' in text
    assert "policy drop" in text.split("chain forward")[1].split("}")[0]
    assert 'iifname "ext0" oifname "eth0"' not in text  # no way in but replies


def test_port_mappings_rewrite_and_admit_only_their_destination() -> None:
    text = ruleset(Firewall("eth0", SPACE, NatLeg("ext0", PUBLIC, (MAPPING,))))
    assert 'iifname "ext0" ip daddr 203.0.113.10 tcp dport 8080 dnat ip to 10.1.1.11:80' in text
    assert 'iifname "ext0" oifname "eth0" ct status dnat accept' in text


def test_l3_legs_forward_both_ways_and_tunnels_admit_ike() -> None:
    text = ruleset(
        Firewall("eth0", SPACE, routed_legs=("ext1",), tunnel_legs=("ext0",), tunnel=True)
    )
    assert 'iifname "ext1" oifname "eth0" accept' in text
    assert 'iifname "ipsec0" oifname "eth0" accept' in text
    assert 'iifname "ext0" udp dport { 500, 4500 } accept' in text
    assert "snat" not in text


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft is not installed")
def test_the_ruleset_parses() -> None:
    fw = Firewall("eth0", SPACE, NatLeg("ext0", PUBLIC, (MAPPING,)), ("ext1",), ("ext0",), True)
    text = ruleset(fw).replace("flush ruleset\n", "")
    done = subprocess.run(["nft", "-c", "-f", "-"], input=text, capture_output=True, text=True)
    if "Operation not permitted" in done.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN")
    assert done.returncode == 0, done.stderr
