"""The HNV layer layout of a VM port, as engine commands (docs/vfp.md).

Outbound a packet crosses ACL_NIC, ACL_SUBNET, VNET; inbound the reverse (VNET,
ACL_SUBNET, ACL_NIC), so that traffic must pass both ACLs and in the order DESIGN.md §4
gives. Both ACL layers are stateful and end with the default rules (priority > 65000):
allow within the VNet's address space both ways, allow outbound to the Internet, block
all else. VNET routes packets to the distributed router's MAC and forwards the rest in
the VSID through the mapping space.

An access port (a NIC on a traditional VLAN network) has the ACL layers only: after them
the engine bridges its frames onto its VLAN (``bridging``), so ARP goes to the wire too.
"""

from __future__ import annotations

from collections.abc import Sequence

from openhnv.vfp import commands as c
from openhnv.vfp.policy import (
    IN,
    OUT,
    Allow,
    Block,
    Direction,
    Encapsulate,
    Route,
    Rule,
    conditions,
)

ACL_NIC = "ACL_NIC"
ACL_SUBNET = "ACL_SUBNET"
VNET = "VNET"
LAYER_PRIORITIES = {ACL_NIC: 10, ACL_SUBNET: 20, VNET: 30}
DEFAULT_RULE_PRIORITIES = (65001, 65002, 65003)


def default_acl_rules(
    vnet_prefixes: Sequence[str], family: int = 4
) -> list[tuple[Direction, Rule]]:
    """The default rules behind every ACL: within the VNet, out to the Internet, deny."""
    space = [p for p in vnet_prefixes if (":" in p) == (family == 6)]
    within = conditions(src_prefixes=space, dst_prefixes=space)
    internet = conditions(dst_prefixes=["::/0" if family == 6 else "0.0.0.0/0"], dst_excluded=space)
    p_vnet, p_inet, p_deny = DEFAULT_RULE_PRIORITIES
    return [
        (IN, Rule("default-allow-vnet-in", p_vnet, within, Allow())),
        (OUT, Rule("default-allow-vnet-out", p_vnet, within, Allow())),
        (OUT, Rule("default-allow-internet-out", p_inet, internet, Allow())),
        (IN, Rule("default-deny-in", p_deny, conditions(), Block())),
        (OUT, Rule("default-deny-out", p_deny, conditions(), Block())),
    ]


def acl_layer_commands(
    port: str,
    layer: str,
    vnet_prefixes: Sequence[str],
    rules: Sequence[tuple[Direction, Rule]] = (),
    families: Sequence[int] = (4,),
) -> list[c.Command]:
    """A stateful ACL layer holding ``rules`` (direction, rule) plus the defaults."""
    cmds: list[c.Command] = [
        c.AddLayer(port, layer, LAYER_PRIORITIES.get(layer, 50), stateful=True)
    ]
    for family in families:
        every = [*rules, *default_acl_rules(vnet_prefixes, family)]
        for direction in (IN, OUT):
            group = f"{direction}-v{family}"
            cmds.append(c.AddGroup(port, layer, group, direction, family))
            mine = tuple(r for d, r in every if d == direction)
            cmds.append(c.AddRules(port, layer, group, mine))
    return cmds


def vnet_layer_commands(
    port: str, router_mac: str, families: Sequence[int] = (4,)
) -> list[c.Command]:
    """VNET: packets to the router MAC are routed, everything else stays in the VSID."""
    cmds: list[c.Command] = [c.AddLayer(port, VNET, LAYER_PRIORITIES[VNET])]
    for family in families:
        group = f"out-v{family}"
        cmds.append(c.AddGroup(port, VNET, group, OUT, family))
        cmds.append(
            c.AddRules(port, VNET, group, (
                Rule("route", 1, conditions(dst_macs=[router_mac]), Route(router_mac)),
                Rule("l2", 2, conditions(), Encapsulate()),
            ))
        )  # fmt: skip
    return cmds


def hnv_port_commands(
    port: c.AddPort,
    *,
    router_mac: str,
    vnet_prefixes: Sequence[str],
    nic_acl: Sequence[tuple[Direction, Rule]] = (),
    subnet_acl: Sequence[tuple[Direction, Rule]] = (),
    families: Sequence[int] = (4,),
) -> list[c.Command]:
    """Every command that creates ``port`` with the HNV layers."""
    return [
        port,
        *acl_layer_commands(port.name, ACL_NIC, vnet_prefixes, nic_acl, families),
        *acl_layer_commands(port.name, ACL_SUBNET, vnet_prefixes, subnet_acl, families),
        *vnet_layer_commands(port.name, router_mac, families),
    ]


def access_port_commands(
    port: c.AddPort,
    *,
    subnet_prefixes: Sequence[str],
    nic_acl: Sequence[tuple[Direction, Rule]] = (),
    families: Sequence[int] = (4,),
) -> list[c.Command]:
    """Every command that creates access ``port``: its NIC ACL, whose default rules take
    the logical subnet's prefixes as the network's own space."""
    return [port, *acl_layer_commands(port.name, ACL_NIC, subnet_prefixes, nic_acl, families)]
