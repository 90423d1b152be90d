"""The host's answers to punted frames, sent through a HostSwitch on a NullDriver: an ARP
request is answered to the asking port from the plan's mapping store (Contoso's and
Fabrikam's overlapping 10.1.1.0/24 kept apart), silence and a counter otherwise."""

from __future__ import annotations

from collections import Counter

from scapy.layers.l2 import ARP, Ether

from openhnv.agent.planner import Plan, plan
from openhnv.agent.responder import Responder
from openhnv.agent.rows import read_catalog
from openhnv.packet.arp import ARP_REPLY
from openhnv.testing import snapshots as nb
from openhnv.testing.southbound import SQL_MAC, host_rows, port_of, sql_arp_request
from openhnv.vfp.engine import VfpEngine
from openhnv.vswitch.null import NullDriver
from openhnv.vswitch.switch import HostSwitch

CONTOSO_WEB_MAC = "00:1d:d8:07:00:12"  # 10.1.1.12 in VSID 5001
FABRIKAM_WEB_MAC = "00:1d:d8:07:00:22"  # the same 10.1.1.12 in VSID 6001


class World:
    def __init__(self) -> None:
        rows = host_rows(nb.figure8())
        self.plan: Plan = plan(read_catalog(rows))
        self.sql = port_of(rows, "contoso-sql")
        self.driver = NullDriver()
        self.switch = HostSwitch(VfpEngine(), self.driver, expire_interval=None)
        self.switch.start()
        self.driver.inject_port(self.sql, SQL_MAC)
        self.counts: Counter[str] = Counter()
        self.responder = Responder(self.switch, lambda: self.plan, self.count)

    def count(self, name: str) -> None:
        self.counts[name] += 1


def test_an_arp_request_is_answered_to_its_port_within_its_vsid() -> None:
    w = World()
    w.responder.punted(w.sql, sql_arp_request("10.1.1.12"), "arp")
    (reply,) = w.driver.take_sent(w.sql)
    arp = Ether(reply)[ARP]  # scapy as the independent decoder
    assert (arp.op, arp.hwsrc, arp.psrc) == (ARP_REPLY, CONTOSO_WEB_MAC, "10.1.1.12")
    assert arp.hwsrc != FABRIKAM_WEB_MAC
    assert w.counts == Counter({"arp_requests": 1, "arp_replies": 1})


def test_an_unknown_address_or_port_gets_silence_and_a_counter() -> None:
    w = World()
    w.responder.punted(w.sql, sql_arp_request("10.1.1.99"), "arp")
    w.responder.punted("no-such-port", sql_arp_request("10.1.1.12"), "arp")
    assert w.driver.take_sent(w.sql) == []
    assert w.counts == Counter({"arp_requests": 2, "arp_unanswered": 1, "arp_unknown_port": 1})


def test_a_punt_it_does_not_answer_is_counted_by_its_reason() -> None:
    w = World()
    w.responder.punted(w.sql, sql_arp_request("10.1.1.12"), "mystery")
    assert w.driver.take_sent(w.sql) == []
    assert w.counts == Counter({"punt:mystery": 1})


def test_no_router_advertisement_where_no_subnet_has_an_ipv6_router() -> None:
    w = World()
    w.responder.advertise_routers(0.0)
    assert w.driver.take_sent(w.sql) == []
    assert w.counts == Counter()
