"""The agent's pure core: desired VFP state from southbound rows, and the commands between
two such states (docs/host.md).

``plan(catalog)`` builds a ``Plan``: per bound Physical_Port an engine port with the HNV
layers of docs/vfp.md (ACL_NIC and ACL_SUBNET from the FW_Rules of each ``acl_layer``
present, VNET with the distributed router when the port's subnet is routed), the mapping
space from Ucast_Macs_Remote + Physical_Locator + Logical_Switch, the host's PAs from
Provider_Address, and the ARP table. ``changes(old, new)`` lists the engine commands
that turn one plan into the other, grouped in ``Unit``s named by the row they come from
so that one refused unit blames one row and blocks nothing else. Only what differs is
sent: an unrelated change never removes and re-adds a port, so flows survive it.
``plan_of_engine`` reads back what an engine holds, so a restarted agent reconciles
against the switch instead of flushing it.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from openhnv.agent.arp import ArpTable, Ipv6Router
from openhnv.agent.dhcp import DhcpConfig
from openhnv.agent.dhcp6 import Dhcp6Config
from openhnv.agent.ndp import ipv6_dns_servers
from openhnv.agent.routes import route_tables
from openhnv.agent.rows import Catalog, FwRuleView, MacView, PortView, Problem
from openhnv.vfp import commands as c
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.guards import GUARD, GUARD_PRIORITY, guard_groups
from openhnv.vfp.layout import ACL_NIC, ACL_SUBNET, LAYER_PRIORITIES, VNET
from openhnv.vfp.policy import (
    IN,
    NO_VSID,
    OUT,
    Allow,
    Block,
    Conditions,
    Direction,
    Encapsulate,
    Route,
    Rule,
    conditions,
)
from openhnv.vfp.routes import RouteTable
from openhnv.vfp.spaces import Encapsulation
from openhnv.vfp.spaces import Mapping as CaMapping
from openhnv.vswitch.driver import PaConfig
from openhnv.vswitch.errors import VSwitchError

LAYER_OF = {"nic": ACL_NIC, "subnet": ACL_SUBNET}
FAMILIES = (4, 6)
ANY_NETWORK = {4: ipaddress.ip_network("0.0.0.0/0"), 6: ipaddress.ip_network("::/0")}
PROTO_ICMP, PROTO_ICMPV6 = 1, 58
IPV4, IPV6 = 4, 6
ROUTE_RULE, L2_RULE = "route", "l2"
ACCESS_RDID = "vlan-"  # an access port's routing domain name: vlan-<VID> (it routes nothing)
ROUTES_TABLE = "Logical_Router"  # route units are named by the RDID of the router's VNet
_UPLINK_RE = re.compile(r"up[0-9]+")
_PNIC_RE = re.compile(r"pnic([0-9]+)")


@dataclass(frozen=True, slots=True)
class GroupPlan:
    group: c.AddGroup
    rules: Mapping[str, Rule]  # rule_id -> rule


@dataclass(frozen=True, slots=True)
class LayerPlan:
    layer: c.AddLayer
    groups: Mapping[str, GroupPlan]


@dataclass(frozen=True, slots=True)
class PortPlan:
    port: c.AddPort
    layers: Mapping[str, LayerPlan]
    dhcp: DhcpConfig | None = None  # what the host's DHCP answers hold (not engine state)
    dhcp6: Dhcp6Config | None = None  # what its DHCPv6 answers hold
    dns_servers: tuple[str, ...] = ()  # the NIC's, for its RAs (RDNSS, agent.ndp)


@dataclass(frozen=True, slots=True)
class Plan:
    """The VFP state a host's rows ask for."""

    ports: Mapping[str, PortPlan] = field(default_factory=dict)
    mappings: Mapping[tuple[str, str], CaMapping] = field(default_factory=dict)
    provider_addresses: tuple[PaConfig, ...] = ()  # for HostSwitch.set_provider_addresses
    arp: ArpTable = field(default_factory=ArpTable)
    problems: tuple[Problem, ...] = ()
    routes: Mapping[str, RouteTable] = field(default_factory=dict)  # RDID -> customer routes


EMPTY_PLAN = Plan()


@dataclass(frozen=True, slots=True)
class Unit:
    """Commands that come from one row (``table``/``key``); applied or refused together."""

    table: str
    key: str
    commands: tuple[c.Command, ...]


# -- planning -------------------------------------------------------------------------
@functools.lru_cache(maxsize=1 << 16)
def _mapping(
    rdid: str, ca: str, pa: str, mac: str, vsid: int, encapsulation: Encapsulation
) -> CaMapping:
    """A mapping, built (and checked) once per distinct value."""
    return CaMapping(rdid, ca, pa, mac, vsid, encapsulation)


def mac_mapping(cat: Catalog, mac: MacView) -> CaMapping:
    """The mapping of one Ucast_Macs_Remote view; ``PolicyError`` when it is invalid."""
    switch = cat.switches[mac.switch]
    locator = cat.locators[mac.locator]
    return _mapping(
        switch.rdid,
        mac.customer_address,
        locator.provider_address,
        mac.mac,
        switch.vsid,
        locator.encapsulation,
    )


def uplink_name(interface: str, index: int) -> str:
    """The switch uplink that carries a PA: ``upN`` as is, ``pnicN`` -> ``up{N-1}``,
    anything else by ``index``, the interface's position among the host's interfaces."""
    if _UPLINK_RE.fullmatch(interface):
        return interface
    found = _PNIC_RE.fullmatch(interface)
    if found and int(found.group(1)) >= 1:
        return f"up{int(found.group(1)) - 1}"
    return f"up{index}"


def plan(cat: Catalog) -> Plan:
    """The desired VFP state of ``cat``; rows that cannot be planned become problems."""
    problems = list(cat.problems)
    router_mac, routed = routing(cat)
    pas: list[PaConfig] = []
    # an interface named neither upN nor pnicN: by its place among the host's interfaces,
    # so that several PAs on one physical NIC (one per provider subnet) share its uplink
    interfaces: dict[str, int] = {}
    for key, pa in sorted(cat.provider_addresses.items()):
        i = interfaces.setdefault(pa.interface, len(interfaces))
        try:
            pas.append(
                PaConfig(
                    pa.address,
                    pa.prefix_length,
                    pa.vlan or None,
                    pa.gateway,
                    uplink_name(pa.interface, i),
                )
            )
        except VSwitchError as err:
            problems.append(Problem("Provider_Address", "", key, str(err)))

    mappings: dict[tuple[str, str], CaMapping] = {}
    owners: dict[tuple[str, str], str] = {}
    for key, mac in sorted(cat.macs.items()):
        try:
            m = mac_mapping(cat, mac)
        except PolicyError as err:
            problems.append(Problem("Ucast_Macs_Remote", "", key, str(err)))
            continue
        at = (m.rdid, m.customer_address)
        if at in mappings and mappings[at] != m:
            problems.append(
                Problem(
                    "Ucast_Macs_Remote",
                    "",
                    key,
                    f"customer address {m.customer_address} of routing domain {m.rdid} is already "
                    f"mapped by Ucast_Macs_Remote {owners[at]!r}",
                )
            )
            continue
        mappings[at], owners[at] = m, key

    local = local_addresses(cat.macs.values())
    rules_of: dict[str, list[FwRuleView]] = {}
    for rule in cat.fw_rules.values():
        rules_of.setdefault(rule.vnic, []).append(rule)
    ports: dict[str, PortPlan] = {}
    mac_owner: dict[str, str] = {}
    for name, view in sorted(cat.ports.items()):
        if view.mac is None or not view.bound:
            continue  # not bound by the controller yet: nothing to program
        if view.mac in mac_owner:
            problems.append(
                Problem(
                    "Physical_Port",
                    "",
                    name,
                    f"MAC {view.mac} is already the MAC of port {mac_owner[view.mac]!r}",
                )
            )
            continue
        try:
            port_plan = bound_port_plan(
                cat,
                view,
                rules_of.get(name, []),
                router_mac if view.switch in routed else None,
                local.get((view.switch, view.mac), ()) if view.switch is not None else (),
                problems,
            )
        except PolicyError as err:
            problems.append(Problem("Physical_Port", "", name, str(err)))
            continue
        ports[name] = port_plan
        mac_owner[view.mac] = name

    routes = route_tables(cat, problems)
    arp = ArpTable(
        router_mac=router_mac,
        customer_macs={(m.vsid, m.customer_address): m.customer_mac for m in mappings.values()},
        gateways={
            s.vsid: s.gateway_ip
            for k, s in cat.switches.items()
            if k in routed and s.gateway_ip is not None
        },
        ipv6_routers=ipv6_routers(cat, routed),
    )
    return Plan(ports, mappings, tuple(pas), arp, tuple(problems), routes)


def ipv6_routers(cat: Catalog, routed: set[str]) -> dict[int, Ipv6Router]:
    """The distributed router's IPv6 prefix and address per VSID of a routed subnet
    that has an IPv6 prefix (dual stack, or IPv6 only)."""
    found: dict[int, Ipv6Router] = {}
    for key, switch in cat.switches.items():
        prefix, gateway = switch.prefix_for(IPV6), switch.gateway_for(IPV6)
        if key in routed and prefix is not None and gateway is not None:
            found[switch.vsid] = Ipv6Router(str(prefix), gateway)
    return found


def routing(cat: Catalog) -> tuple[str | None, set[str]]:
    """The distributed router's MAC, and the logical switches an enabled router binds."""
    router_mac = cat.global_row.router_mac if cat.global_row is not None else None
    return router_mac, {s for r in cat.routers.values() if r.enabled for s in r.switches}


def local_addresses(macs: Iterable[MacView]) -> dict[tuple[str, str], set[str]]:
    """The CAs of the local Ucast_Macs_Remote rows, by (logical switch, MAC)."""
    local: dict[tuple[str, str], set[str]] = {}
    for m in macs:
        if m.local:
            local.setdefault((m.switch, m.mac), set()).add(m.customer_address)
    return local


def bound_port_plan(
    cat: Catalog,
    view: PortView,
    fw_rules: Iterable[FwRuleView],
    router_mac: str | None,
    local_ips: Iterable[str],
    problems: list[Problem],
) -> PortPlan:
    """A bound port (``view.bound``): its addresses (its own plus ``local_ips``, those of
    its local mappings), ACLs and VNET; an access port (``view.access_vlan``) has its
    ACLs only, the engine bridges it onto its VLAN. ``PolicyError`` if bad."""
    if view.mac is None or not view.bound:
        raise PolicyError("vlan_bindings", view.key, "the port is not bound")
    mac = view.mac
    ips = set(view.ip_addresses) | set(local_ips)
    name = view.key
    if view.switch is None:
        vlan = view.access_vlan
        port = c.AddPort(name, mac, NO_VSID, f"{ACCESS_RDID}{vlan}", tuple(sorted(ips)),
                         view.mac_spoofing, access_vlan=vlan, qos=view.qos)  # fmt: skip
    else:
        switch = cat.switches[view.switch]
        port = c.AddPort(name, mac, switch.vsid, switch.rdid, tuple(sorted(ips)),
                         view.mac_spoofing, view.gateway, qos=view.qos)  # fmt: skip
    layers: dict[str, LayerPlan] = {}
    by_layer: dict[str, list[FwRuleView]] = {}
    for rule in sorted(fw_rules, key=lambda r: r.key):
        by_layer.setdefault(LAYER_OF[rule.layer], []).append(rule)
    if not by_layer:
        # Fail closed: a bound port whose FW_Rules have not arrived passes nothing.
        layers[ACL_NIC] = LayerPlan(_acl_layer(name, ACL_NIC), {})
    for layer_name, rules in sorted(by_layer.items()):
        layers[layer_name] = _acl_plan(name, layer_name, rules, problems)
    if port.access_vlan is None:
        layers[VNET] = _vnet_plan(name, router_mac)
    guard = _guard_plan(name, port.ip_addresses, view)
    if guard is not None:
        layers[GUARD] = guard
    dhcp6 = dhcp6_config(cat, view, router_mac)
    dhcp = dhcp_config(cat, view, router_mac)
    return PortPlan(port, layers, dhcp, dhcp6, dns_servers=view.dns_servers)


def dhcp_config(cat: Catalog, view: PortView, router_mac: str | None) -> DhcpConfig | None:
    """What the host's DHCP answers hold for a bound port: its first IPv4 address, its
    subnet's prefix, the distributed router as server and gateway (when routed) and its
    DNS servers; None when the port has no IPv4 address or its subnet no router."""
    switch = cat.switches[view.switch] if view.switch is not None else None
    server_mac = router_mac or (cat.global_row.router_mac if cat.global_row else None)
    own = [a for a in view.ip_addresses if ipaddress.ip_address(a).version == IPV4]
    if switch is None or switch.prefix is None or switch.gateway_ip is None:
        return None
    if not own or server_mac is None or switch.prefix.version != IPV4:
        return None
    dns = tuple(a for a in view.dns_servers if ipaddress.ip_address(a).version == IPV4)
    return DhcpConfig(
        address=own[0],
        prefix_length=switch.prefix.prefixlen,
        server=switch.gateway_ip,
        server_mac=server_mac,
        router=switch.gateway_ip if router_mac is not None else None,
        dns_servers=dns,
    )


def dhcp6_config(cat: Catalog, view: PortView, router_mac: str | None) -> Dhcp6Config | None:
    """What the host's DHCPv6 answers hold for a bound port: its first IPv6 address, its
    subnet's IPv6 prefix and its IPv6 DNS servers; None when the port has no IPv6
    address or its subnet no IPv6 router (no RA would tell the prefix)."""
    switch = cat.switches[view.switch] if view.switch is not None else None
    own = [a for a in view.ip_addresses if ipaddress.ip_address(a).version == IPV6]
    if switch is None or router_mac is None or not own:
        return None
    prefix = switch.prefix_for(IPV6)
    if prefix is None or switch.gateway_for(IPV6) is None:
        return None
    return Dhcp6Config(own[0], str(prefix), router_mac, ipv6_dns_servers(view.dns_servers))


def _guard_plan(port: str, ips: Iterable[str], view: PortView) -> LayerPlan | None:
    """The GUARD layer of a port with ARP or DHCP guard on (docs/vfp.md), else None."""
    groups = guard_groups(ips, arp_guard=view.arp_guard, dhcp_guard=view.dhcp_guard)
    if not groups:
        return None
    return LayerPlan(
        c.AddLayer(port, GUARD, GUARD_PRIORITY),
        {
            name: GroupPlan(
                c.AddGroup(port, GUARD, name, OUT, family), {r.rule_id: r for r in rules}
            )
            for name, (family, rules) in groups.items()
        },
    )


def _acl_layer(port: str, layer: str) -> c.AddLayer:
    return c.AddLayer(
        port,
        layer,
        LAYER_PRIORITIES[layer],
        stateful=True,
        default_inbound=Block(),
        default_outbound=Block(),
    )


def _acl_plan(port: str, layer: str, rules: list[FwRuleView], problems: list[Problem]) -> LayerPlan:
    groups: dict[str, dict[str, Rule]] = {f"{d}-v{f}": {} for f in FAMILIES for d in (IN, OUT)}
    for rule in rules:
        if not rule.enabled:
            continue
        try:
            per_family = engine_rules(rule)
        except PolicyError as err:
            problems.append(Problem("FW_Rules", "", rule.key, str(err)))
            continue
        clash = [f for f, r in per_family if r.rule_id in groups[f"{rule.direction}-v{f}"]]
        if clash:
            problems.append(
                Problem(
                    "FW_Rules",
                    "",
                    rule.key,
                    f"rule_name {rule.name!r} is used twice in the {rule.layer} ACL of {rule.vnic}",
                )
            )
            continue
        for family, engine_rule in per_family:
            groups[f"{rule.direction}-v{family}"][engine_rule.rule_id] = engine_rule
    return LayerPlan(
        _acl_layer(port, layer),
        {
            name: GroupPlan(
                c.AddGroup(port, layer, name, IN if name.startswith("in") else OUT, int(name[-1])),
                rules_,
            )
            for name, rules_ in groups.items()
        },
    )


def engine_rules(rule: FwRuleView) -> list[tuple[int, Rule]]:
    """The engine rule(s) of one FW_Rules row: one per IP family its prefixes allow."""
    out: list[tuple[int, Rule]] = []
    for family in FAMILIES:
        src = tuple(p for p in rule.src_prefixes if p.version == family)
        dst = tuple(p for p in rule.dst_prefixes if p.version == family)
        if (rule.src_prefixes and not src) or (rule.dst_prefixes and not dst):
            continue  # the rule names addresses of the other family only
        src_ex = tuple(p for p in rule.src_excluded if p.version == family)
        dst_ex = tuple(p for p in rule.dst_excluded if p.version == family)
        protocols = None
        if rule.protocols:
            protocols = frozenset(
                PROTO_ICMPV6 if family == 6 and p == PROTO_ICMP else p for p in rule.protocols
            )
        cond = Conditions(
            src_prefixes=src or ((ANY_NETWORK[family],) if src_ex else None),
            src_excluded=src_ex,
            dst_prefixes=dst or ((ANY_NETWORK[family],) if dst_ex else None),
            dst_excluded=dst_ex,
            protocols=protocols,
            src_ports=None if rule.src_ports is None else (rule.src_ports,),
            dst_ports=None if rule.dst_ports is None else (rule.dst_ports,),
        )
        action = Allow() if rule.allow else Block()
        out.append((family, Rule(rule.name, rule.priority, cond, action)))
    return out


def _vnet_plan(port: str, router_mac: str | None) -> LayerPlan:
    groups: dict[str, GroupPlan] = {}
    for family in FAMILIES:
        name = f"out-v{family}"
        rules: dict[str, Rule] = {L2_RULE: Rule(L2_RULE, 2, conditions(), Encapsulate())}
        if router_mac is not None:
            route = Rule(ROUTE_RULE, 1, conditions(dst_macs=[router_mac]), Route(router_mac))
            rules = {ROUTE_RULE: route, **rules}
        groups[name] = GroupPlan(c.AddGroup(port, VNET, name, OUT, family), rules)
    return LayerPlan(c.AddLayer(port, VNET, LAYER_PRIORITIES[VNET]), groups)


# -- differences ------------------------------------------------------------------------
def changes(old: Plan, new: Plan) -> list[Unit]:
    """The units of commands that turn ``old`` into ``new`` (nothing when equal)."""
    units: list[Unit] = []
    for at, m in old.mappings.items():
        if at not in new.mappings:
            units.append(mapping_unit(m, (c.RemoveMapping(m.rdid, m.customer_address, True),)))
    for name in old.ports:
        if name not in new.ports:
            units.append(Unit("Physical_Port", name, (c.RemovePort(name, missing_ok=True),)))
    for name, port in new.ports.items():
        cmds = port_commands(old.ports.get(name), port)
        if cmds:
            units.append(Unit("Physical_Port", name, tuple(cmds)))
    for at, m in new.mappings.items():
        if old.mappings.get(at) != m:
            units.append(mapping_unit(m, (c.AddMapping(m),)))
    return units + route_units(old, new)


def route_units(old: Plan, new: Plan) -> list[Unit]:
    """One unit per routing domain whose customer routes came, changed or went."""
    units = [
        Unit(ROUTES_TABLE, rdid, (c.RemoveRoutes(rdid, missing_ok=True),))
        for rdid in old.routes
        if rdid not in new.routes
    ]
    units += [
        Unit(ROUTES_TABLE, rdid, (c.SetRoutes(table),))
        for rdid, table in new.routes.items()
        if old.routes.get(rdid) != table
    ]
    return units


def mapping_unit(m: CaMapping, cmds: tuple[c.Command, ...]) -> Unit:
    return Unit("Ucast_Macs_Remote", f"{m.vsid}/{m.customer_mac}/{m.customer_address}", cmds)


def port_commands(old: PortPlan | None, new: PortPlan) -> list[c.Command]:
    """Commands from ``old`` to ``new`` for one port: additions first, then removals."""
    name = new.port.name
    adds: list[c.Command] = [] if old is not None and old.port == new.port else [new.port]
    removes: list[c.Command] = []
    old_layers = old.layers if old is not None else {}
    for layer_name, layer in new.layers.items():
        old_layer = old_layers.get(layer_name)
        if old_layer is None or old_layer.layer != layer.layer:
            adds.append(layer.layer)
        old_groups = old_layer.groups if old_layer is not None else {}
        for group_name, group in layer.groups.items():
            old_group = old_groups.get(group_name)
            if old_group is None or old_group.group != group.group:
                adds.append(group.group)
            old_rules = old_group.rules if old_group is not None else {}
            added = tuple(r for rid, r in group.rules.items() if old_rules.get(rid) != r)
            if added:
                adds.append(c.AddRules(name, layer_name, group_name, added))
            removes += [
                c.RemoveRule(name, layer_name, group_name, rid, missing_ok=True)
                for rid in old_rules
                if rid not in group.rules
            ]
        removes += [
            c.RemoveGroup(name, layer_name, g, missing_ok=True)
            for g in old_groups
            if g not in layer.groups
        ]
    removes += [
        c.RemoveLayer(name, layer_name, missing_ok=True)
        for layer_name in old_layers
        if layer_name not in new.layers
    ]
    return adds + removes


def without(programmed: Plan, failed: list[Unit]) -> Plan:
    """``programmed`` less what the ``failed`` units were to program (retried next time)."""
    ports = dict(programmed.ports)
    mappings = dict(programmed.mappings)
    routes = dict(programmed.routes)
    for unit in failed:
        if unit.table == "Physical_Port":
            ports.pop(unit.key, None)
        for cmd in unit.commands:
            if isinstance(cmd, c.AddMapping):
                mappings.pop((cmd.mapping.rdid, cmd.mapping.customer_address), None)
            elif isinstance(cmd, c.SetRoutes):
                routes.pop(cmd.table.rdid, None)
    return replace(programmed, ports=ports, mappings=mappings, routes=routes)


# -- reading an engine back -------------------------------------------------------------
def plan_of_engine(engine: VfpEngine) -> Plan:
    """What ``engine`` holds, as a plan (ports, layers, groups, rules, mappings)."""
    state = engine.state
    ports: dict[str, PortPlan] = {}
    for name, p in state.ports.items():
        add = c.AddPort(
            name,
            p.mac,
            p.vsid,
            p.rdid,
            tuple(sorted(str(a) for a in p.ip_addresses)),
            p.allow_mac_spoofing,
            p.gateway,
            p.access_vlan,
            p.qos,
        )
        layers: dict[str, LayerPlan] = {}
        for layer_name, layer in p.layers.items():
            groups = {
                g.name: GroupPlan(
                    c.AddGroup(
                        name, layer_name, g.name, _direction(g.direction), g.family, g.priority
                    ),
                    dict(g.rules),
                )
                for g in layer.groups.values()
            }
            add_layer = c.AddLayer(
                name,
                layer_name,
                layer.priority,
                layer.stateful,
                layer.default_inbound,
                layer.default_outbound,
            )
            layers[layer_name] = LayerPlan(add_layer, groups)
        ports[name] = PortPlan(add, layers)
    mappings = {(m.rdid, m.customer_address): m for m in state.mappings.all()}
    routes = {table.rdid: table for table in state.routes.all()}
    return Plan(ports=ports, mappings=mappings, routes=routes)


def _direction(value: str) -> Direction:
    return IN if value == IN else OUT
