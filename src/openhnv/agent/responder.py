"""The host's answers to what its VMs ask of the network: ARP, DHCP, DHCPv6, ND, RAs.

The engine punts these frames (``vfp.punts``: ``arp``, ``DHCP_PUNT``,
``DHCP6_PUNT``, ``ND_PUNT``); ``Responder.punted`` answers each from the agent's last
plan (the mapping store and the NICs' data) through the pure answerers ``agent.arp``,
``agent.dhcp``, ``agent.dhcp6`` and ``agent.ndp``, and sends the reply to the asking
port. ``advertise_routers`` sends the unsolicited Router Advertisements a router would.
Every request, reply and unanswered request is counted through ``count``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from openhnv.agent import arp, dhcp, dhcp6, ndp
from openhnv.agent.planner import Plan
from openhnv.vfp.punts import DHCP6_PUNT, DHCP_PUNT, ND_PUNT
from openhnv.vswitch.errors import VSwitchError
from openhnv.vswitch.switch import HostSwitch

log = logging.getLogger(__name__)

ARP_PUNT = "arp"


class Responder:
    """Answers ``switch``'s punted frames from ``plan()``, counting through ``count``."""

    def __init__(
        self, switch: HostSwitch, plan: Callable[[], Plan], count: Callable[[str], None]
    ) -> None:
        self.switch = switch
        self._plan = plan
        self._count = count
        self._lock = threading.Lock()
        self._ra_sent: dict[str, float] = {}  # port -> when its last unsolicited RA went

    def port_added(self, port: str) -> None:
        """A VM that came gets a router advertisement on the next ``advertise_routers``."""
        with self._lock:
            self._ra_sent.pop(port, None)

    def punted(self, port: str, frame: bytes, reason: str) -> None:
        """Answer a frame the engine punted from ``port`` for ``reason``."""
        if reason == DHCP_PUNT:
            self._answer_dhcp(port, frame)
            return
        if reason == DHCP6_PUNT:
            self._answer_dhcp6(port, frame)
            return
        if reason == ND_PUNT:
            self._answer_nd(port, frame)
            return
        if reason != ARP_PUNT:
            self._count(f"punt:{reason}")
            return
        self._count("arp_requests")
        current = self._plan()
        port_plan = current.ports.get(port)
        if port_plan is None:
            self._count("arp_unknown_port")
            return
        requester = arp.Requester(port_plan.port.vsid, port_plan.port.ip_addresses)
        reply = arp.answer(current.arp, requester, frame)
        if reply is None:
            self._count("arp_unanswered")
            return
        self._send(port, reply, "arp_replies")

    def _answer_dhcp(self, port: str, frame: bytes) -> None:
        """A DHCP client message of ``port``: answered from its NIC's data (agent.dhcp)."""
        self._count("dhcp_requests")
        port_plan = self._plan().ports.get(port)
        config = port_plan.dhcp if port_plan is not None else None
        reply = None
        if port_plan is not None and config is not None:
            reply = dhcp.answer(config, port_plan.port.mac, frame, self.switch.overlay_mtu())
        if reply is None:
            self._count("dhcp_unanswered")
            return
        self._send(port, reply, "dhcp_replies")

    def _answer_dhcp6(self, port: str, frame: bytes) -> None:
        """A DHCPv6 client message of ``port``: answered from its NIC's data (agent.dhcp6)."""
        self._count("dhcp6_requests")
        port_plan = self._plan().ports.get(port)
        config = port_plan.dhcp6 if port_plan is not None else None
        reply = dhcp6.answer(config, frame) if config is not None else None
        if reply is None:
            self._count("dhcp6_unanswered")
            return
        self._send(port, reply, "dhcp6_replies")

    def _answer_nd(self, port: str, frame: bytes) -> None:
        """A Neighbor or Router Solicitation of ``port``: answered from the mapping store
        (agent.ndp); other ND and MLD messages are the host's to absorb."""
        self._count("nd_messages")
        current = self._plan()
        port_plan = current.ports.get(port)
        reply = None
        if port_plan is not None:
            requester = arp.Requester(port_plan.port.vsid, port_plan.port.ip_addresses)
            mtu = self.switch.overlay_mtu()
            reply = ndp.answer(current.arp, requester, frame, mtu, port_plan.dns_servers)
        if reply is None:
            self._count("nd_unanswered")
            return
        self._send(port, reply, "nd_replies")

    def advertise_routers(self, now: float) -> None:
        """Unsolicited Router Advertisements: to every port of a subnet with an IPv6 router
        when it appears and every ``ndp.RA_INTERVAL`` seconds, as a router does."""
        current = self._plan()
        with self._lock:  # port_added (another thread) asks for one too
            for gone in set(self._ra_sent) - set(current.ports):
                del self._ra_sent[gone]
            due = [
                (name, port_plan)
                for name, port_plan in current.ports.items()
                if now - self._ra_sent.get(name, -ndp.RA_INTERVAL) >= ndp.RA_INTERVAL
            ]
            for name, _ in due:
                self._ra_sent[name] = now
        mtu = self.switch.overlay_mtu()
        for name, port_plan in due:
            ra = ndp.advertisement(
                current.arp, port_plan.port.vsid, mtu=mtu,
                managed=ndp.managed(port_plan.port.ip_addresses),
                dns_servers=port_plan.dns_servers,
            )  # fmt: skip
            if ra is None:
                continue
            try:
                self.switch.send_to_port(name, ra)
            except VSwitchError:
                continue  # not attached yet: port_added asks for one again
            self._count("ra_unsolicited")

    def _send(self, port: str, frame: bytes, counter: str) -> None:
        try:
            self.switch.send_to_port(port, frame)
        except VSwitchError as err:
            log.warning("%s to port %s not sent: %s", counter, port, err)
            return
        self._count(counter)
