"""Programming an engine: ``apply`` of the commands in ``openhnv.vfp.commands``.

``Programming`` is the engine's command interpreter (``engine.programming``); it changes
the ``EngineState`` it is given and nothing else. Every change bumps the generation of
the ports it affects (all ports for a change of mappings, PAs, neighbours or ports), so
their unified flows are re-evaluated on their next packet instead of being flushed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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
        state = self.state
        match command:
            case c.AddPort():
                self._add_port(command)
            case c.RemovePort(name, missing_ok):
                port = state.ports.pop(name, None)
                if port is None and not missing_ok:
                    raise PolicyError("name", name, "no such port")
                if port is not None and state.ports_by_mac.get(port.mac) is port:
                    del state.ports_by_mac[port.mac]
                self._everything_changed()
            case c.SetPortState(name, enabled):
                port = self._port(name)
                port.enabled = bool(enabled)
            case c.AddLayer(port_name, name, priority, stateful, d_in, d_out):
                port = self._port(port_name)
                old = port.layers.get(name)
                layer = Layer(name, priority, stateful, d_in, d_out)
                if old is not None:
                    layer.groups = old.groups
                port.layers[name] = layer
                port.changed()
            case c.RemoveLayer(port_name, name, missing_ok):
                port = self._port(port_name)
                if port.layers.pop(name, None) is None and not missing_ok:
                    raise PolicyError("layer", name, f"no such layer on port {port_name}")
                port.changed()
            case c.AddGroup(port_name, layer_name, name, direction, family, priority):
                port = self._port(port_name)
                layer = self._layer(port, layer_name)
                group = Group(name, direction, family, priority)
                old_group = layer.groups.get(name)
                if old_group is not None:
                    group.rules = old_group.rules
                layer.groups[name] = group
                layer.changed()
                port.changed()
            case c.RemoveGroup(port_name, layer_name, name, missing_ok):
                port = self._port(port_name)
                layer = self._layer(port, layer_name)
                if layer.groups.pop(name, None) is None and not missing_ok:
                    raise PolicyError("group", name, f"no such group in layer {layer_name}")
                layer.changed()
                port.changed()
            case c.AddRule(port_name, layer_name, group_name, rule):
                self._add_rules(port_name, layer_name, group_name, (rule,))
            case c.AddRules(port_name, layer_name, group_name, rules):
                self._add_rules(port_name, layer_name, group_name, rules)
            case c.RemoveRule(port_name, layer_name, group_name, rule_id, missing_ok):
                port = self._port(port_name)
                group = self._group(port, layer_name, group_name)
                if group.rules.pop(rule_id, None) is None and not missing_ok:
                    raise PolicyError("rule_id", rule_id, f"no such rule in group {group_name}")
                group.changed()
                port.changed()
            case c.AddMapping(mapping):
                state.mappings.add(mapping)
                self._everything_changed()
            case c.RemoveMapping(rdid, address, missing_ok):
                state.mappings.remove(rdid, address, missing_ok=missing_ok)
                self._everything_changed()
            case c.AddProviderAddress(pa):
                state.provider_addresses[pa.address] = pa
                self._everything_changed()
            case c.RemoveProviderAddress(address, missing_ok):
                if state.provider_addresses.pop(address, None) is None and not missing_ok:
                    raise PolicyError("address", address, "not a PA of this switch")
                self._everything_changed()
            case c.SetPaNeighbor(address, mac):
                if mac is None:
                    state.pa_neighbors.pop(address, None)
                else:
                    state.pa_neighbors[address] = mac
                self._everything_changed()
            case _:
                raise PolicyError("command", command, "not an engine command")

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
                    cmd.allow_mac_spoofing, state.flow_capacity)  # fmt: skip
        if old is not None:  # keep policy and flows; they re-evaluate
            port.layers, port.enabled, port.generation = old.layers, old.enabled, old.generation
            port.outbound, port.inbound, port.connections = (
                old.outbound,
                old.inbound,
                old.connections,
            )
            port.counters, port.rule_hits = old.counters, old.rule_hits
            if state.ports_by_mac.get(old.mac) is old:
                del state.ports_by_mac[old.mac]
        state.ports[cmd.name] = port
        state.ports_by_mac[cmd.mac] = port
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
