"""A compartment's IPsec connections as charon lists them, and why one is down."""

from __future__ import annotations

from openhnv.gateway.tunnels import (
    CONNECTED,
    CONNECTING,
    DISCONNECTED,
    NO_REASON,
    parse_sas,
    tunnel_states,
)

LISTING = """\
onprem: #1, ESTABLISHED, IKEv2, 4a8c1f0b2d3e4f56_i* 9b7c6d5e4f3a2b1c_r
  local  '203.0.113.10' @ 203.0.113.10[4500]
  remote '203.0.113.50' @ 203.0.113.50[4500]
  AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048
  established 12s ago, rekeying in 27996s
  onprem: #1, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:AES_CBC-256/HMAC_SHA2_256_128
    installed 12s ago, rekeying in 3378s, expires in 3948s
    local  10.1.0.0/16
    remote 192.168.100.0/24
branch: #2, CONNECTING, IKEv2, 1111111111111111_i* 0000000000000000_r
  local  '203.0.113.10' @ 203.0.113.10[500]
  remote '%any' @ 203.0.113.51[500]
"""

LOG = [
    "09[IKE] <branch|2> initiating IKE_SA branch[2] to 203.0.113.51",
    '11[CFG] <branch|2> received end entity cert "CN=203.0.113.51"',
    "11[CFG] <branch|2> constraint check failed: peer not authenticated by CA 'CN=wrong CA'",
    "11[CFG] <branch|2> selected peer config 'branch' unacceptable: constraint checking failed",
    "11[IKE] <onprem|1> IKE_SA onprem[1] established between 203.0.113.10...203.0.113.50",
    "12[IKE] <hq|3> sending retransmit 5 of request message ID 0, seq 1",
    "12[IKE] <hq|3> giving up after 5 retransmits",
]


def test_the_listing_gives_each_connections_ike_and_child_states() -> None:
    assert parse_sas(LISTING) == {
        "onprem": ("ESTABLISHED", ["INSTALLED"]),
        "branch": ("CONNECTING", []),
    }


def test_an_installed_child_is_connected_and_a_refused_authority_says_so() -> None:
    states = tunnel_states(["onprem", "branch", "hq", "new"], LISTING, LOG)
    assert states["onprem"].state == CONNECTED
    assert states["onprem"].reason == ""
    assert states["branch"].state == CONNECTING
    assert "not authenticated by CA 'CN=wrong CA'" in states["branch"].reason
    assert states["hq"].state == DISCONNECTED
    assert states["hq"].reason == "giving up after 5 retransmits"
    assert states["new"] == tunnel_states(["new"], "", [])["new"]
    assert states["new"].reason == NO_REASON


def test_an_established_ike_sa_wins_over_a_retry_of_the_same_connection() -> None:
    listing = LISTING.replace("branch: #2, CONNECTING", "onprem: #2, CONNECTING")
    assert parse_sas(listing)["onprem"][0] == "ESTABLISHED"
