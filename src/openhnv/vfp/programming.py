"""Programming an engine: ``apply`` of the commands in ``openhnv.vfp.commands``.

``Programming`` is the engine's command interpreter (``engine.programming``); it changes
the ``EngineState`` it is given and nothing else. Every change bumps the generation of
the ports it affects (all ports for a change of mappings, PAs, neighbours or ports), so
their unified flows are re-evaluated on their next packet instead of being flushed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from openhnv.vfp import commands as c
from openhnv.vfp.emits import UPLINK
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.model import Group, Layer, Port
from openhnv.vfp.policy import Rule
from openhnv.vfp.state import EngineState


class Programming:
    """The command interpreter of one engine's state."""

    def __init__(self, state: EngineState) -> None:
        self.state = state

    def apply(self, command: c.Command) -> None:
        """Apply one programming command (``PolicyError`` when it cannot be applied)."""
        handler = _HANDLERS.get(type(command))
        if handler is None:
            raise PolicyError("command", command, "not an engine command")
        handler(self, command)

    # -- one method per command (``_HANDLERS`` below names them) ----------------------
    def _remove_port(self, cmd: c.RemovePort) -> None:
        state = self.state
        port = state.ports.pop(cmd.name, None)
        if port is None and not cmd.missing_ok:
            raise PolicyError("name", cmd.name, "no such port")
        if port is not None and state.ports_by_mac.get(port.mac) is port:
            del state.ports_by_mac[port.mac]
        if port is not None:
            _leave_vlan(state, port)
        self._everything_changed()

    def _set_port_state(self, cmd: c.SetPortState) -> None:
        self._port(cmd.name).enabled = bool(cmd.enabled)

    def _add_layer(self, cmd: c.AddLayer) -> None:
        port = self._port(cmd.port)
        old = port.layers.get(cmd.name)
        layer = Layer(
            cmd.name, cmd.priority, cmd.stateful, cmd.default_inbound, cmd.default_outbound
        )
        if old is not None:
            layer.groups = old.groups
        port.layers[cmd.name] = layer
        port.changed()

    def _remove_layer(self, cmd: c.RemoveLayer) -> None:
        port = self._port(cmd.port)
        if port.layers.pop(cmd.name, None) is None and not cmd.missing_ok:
            raise PolicyError("layer", cmd.name, f"no such layer on port {cmd.port}")
        port.changed()

    def _add_group(self, cmd: c.AddGroup) -> None:
        port = self._port(cmd.port)
        layer = self._layer(port, cmd.layer)
        group = Group(cmd.name, cmd.direction, cmd.family, cmd.priority)
        old_group = layer.groups.get(cmd.name)
        if old_group is not None:
            group.rules = old_group.rules
        layer.groups[cmd.name] = group
        layer.changed()
        port.changed()

    def _remove_group(self, cmd: c.RemoveGroup) -> None:
        port = self._port(cmd.port)
        layer = self._layer(port, cmd.layer)
        if layer.groups.pop(cmd.name, None) is None and not cmd.missing_ok:
            raise PolicyError("group", cmd.name, f"no such group in layer {cmd.layer}")
        layer.changed()
        port.changed()

    def _add_rule(self, cmd: c.AddRule) -> None:
        self._add_rules(cmd.port, cmd.layer, cmd.group, (cmd.rule,))

    def _add_rule_list(self, cmd: c.AddRules) -> None:
        self._add_rules(cmd.port, cmd.layer, cmd.group, cmd.rules)

    def _remove_rule(self, cmd: c.RemoveRule) -> None:
        port = self._port(cmd.port)
        group = self._group(port, cmd.layer, cmd.group)
        if group.rules.pop(cmd.rule_id, None) is None and not cmd.missing_ok:
            raise PolicyError("rule_id", cmd.rule_id, f"no such rule in group {cmd.group}")
        group.changed()
        port.changed()

    def _set_routes(self, cmd: c.SetRoutes) -> None:
        self.state.routes.set(cmd.table)
        self._everything_changed()

    def _remove_routes(self, cmd: c.RemoveRoutes) -> None:
        self.state.routes.remove(cmd.rdid, missing_ok=cmd.missing_ok)
        self._everything_changed()

    def _add_mapping(self, cmd: c.AddMapping) -> None:
        self.state.mappings.add(cmd.mapping)
        self._everything_changed()

    def _remove_mapping(self, cmd: c.RemoveMapping) -> None:
        self.state.mappings.remove(cmd.rdid, cmd.customer_address, missing_ok=cmd.missing_ok)
        self._everything_changed()

    def _add_provider_address(self, cmd: c.AddProviderAddress) -> None:
        pa = cmd.provider_address
        self.state.provider_addresses[pa.address] = pa
        self._everything_changed()

    def _remove_provider_address(self, cmd: c.RemoveProviderAddress) -> None:
        if self.state.provider_addresses.pop(cmd.address, None) is None and not cmd.missing_ok:
            raise PolicyError("address", cmd.address, "not a PA of this switch")
        self._everything_changed()

    def _set_pa_neighbor(self, cmd: c.SetPaNeighbor) -> None:
        if cmd.mac is None:
            self.state.pa_neighbors.pop(cmd.address, None)
        else:
            self.state.pa_neighbors[cmd.address] = cmd.mac
        self._everything_changed()

    def apply_all(self, commands: Iterable[c.Command]) -> None:
        """Apply commands in order (stops at the first that fails)."""
        for command in commands:
            self.apply(command)

    def _add_port(self, cmd: c.AddPort) -> None:
        state = self.state
        owner = state.ports_by_mac.get(cmd.mac)
        if owner is not None and owner.name != cmd.name:
            raise PolicyError("mac", cmd.mac, f"already the MAC of port {owner.name}")
        if cmd.name == UPLINK:
            raise PolicyError("name", cmd.name, "reserved for the uplink")
        old = state.ports.get(cmd.name)
        port = Port(cmd.name, cmd.mac, cmd.vsid, cmd.rdid, cmd.ip_addresses,
                    cmd.allow_mac_spoofing, state.flow_capacity, cmd.gateway,
                    cmd.access_vlan)  # fmt: skip
        port.meter = old.meter if old is not None else state.meter()
        if old is not None:  # keep policy and flows; they re-evaluate
            port.layers, port.enabled, port.generation = old.layers, old.enabled, old.generation
            port.outbound, port.inbound, port.connections = (
                old.outbound,
                old.inbound,
                old.connections,
            )
            port.counters, port.rule_hits = old.counters, old.rule_hits
            port.qos, port.qos_out, port.qos_in = old.qos, old.qos_out, old.qos_in
            if state.ports_by_mac.get(old.mac) is old:
                del state.ports_by_mac[old.mac]
            _leave_vlan(state, old)
        port.set_qos(cmd.qos, state.police_inbound)
        state.ports[cmd.name] = port
        state.ports_by_mac[cmd.mac] = port
        if port.access_vlan is not None:
            state.access_ports.setdefault(port.access_vlan, {})[port.mac] = port
        self._everything_changed()

    def _add_rules(
        self, port_name: str, layer_name: str, group_name: str, rules: Sequence[Rule]
    ) -> None:
        port = self._port(port_name)
        group = self._group(port, layer_name, group_name)
        for rule in rules:
            group.rules[rule.rule_id] = rule
        group.changed()
        port.changed()

    def _everything_changed(self) -> None:
        self.state.forget_templates()
        for port in self.state.ports.values():
            port.changed()
        self.state.uplink.changed()

    def _port(self, name: str) -> Port:
        return self.state.port(name)

    def _layer(self, port: Port, name: str) -> Layer:
        layer = port.layers.get(name)
        if layer is None:
            raise PolicyError("layer", name, f"no such layer on port {port.name}")
        return layer

    def _group(self, port: Port, layer: str, name: str) -> Group:
        group = self._layer(port, layer).groups.get(name)
        if group is None:
            raise PolicyError("group", name, f"no such group in layer {layer}")
        return group


def _leave_vlan(state: EngineState, port: Port) -> None:
    """``port`` is no longer its VLAN's access port (removed or replaced)."""
    if port.access_vlan is None:
        return
    members = state.access_ports.get(port.access_vlan, {})
    if members.get(port.mac) is port:
        del members[port.mac]
    if not members:
        state.access_ports.pop(port.access_vlan, None)


_HANDLERS: dict[type[Any], Callable[[Programming, Any], None]] = {
    c.AddPort: Programming._add_port,
    c.RemovePort: Programming._remove_port,
    c.SetPortState: Programming._set_port_state,
    c.AddLayer: Programming._add_layer,
    c.RemoveLayer: Programming._remove_layer,
    c.AddGroup: Programming._add_group,
    c.RemoveGroup: Programming._remove_group,
    c.AddRule: Programming._add_rule,
    c.AddRules: Programming._add_rule_list,
    c.RemoveRule: Programming._remove_rule,
    c.AddMapping: Programming._add_mapping,
    c.RemoveMapping: Programming._remove_mapping,
    c.SetRoutes: Programming._set_routes,
    c.RemoveRoutes: Programming._remove_routes,
    c.AddProviderAddress: Programming._add_provider_address,
    c.RemoveProviderAddress: Programming._remove_provider_address,
    c.SetPaNeighbor: Programming._set_pa_neighbor,
}
"""Each engine command's type and the method that applies it."""
