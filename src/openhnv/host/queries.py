"""What the host's control socket answers: the ops of ``hnv vfp``, ``hnv host`` and ``hnv trace``.

Every engine read runs under ``HostSwitch.inspect`` (the switch's lock), through the
engine's own listings (``openhnv.vfp.listing``); nothing here changes the switch but
``import-connections`` (below).
``host_handlers`` returns the op table that ``control.ControlServer`` dispatches.

Ops and their arguments (results are JSON-ready lists of dicts or dicts):

=====================  ==============================  ===================================
op                     arguments                       like
=====================  ==============================  ===================================
``ping``                                               host name and pid
``list-ports``                                         ``vfpctrl /list-vmswitch-port``
``list-layers``        ``port``                        ``vfpctrl /port P /list-layer``
``list-groups``        ``port``, ``layer``             ``/list-group``
``list-rules``         ``port``, [``layer``, ``group``] ``/list-rule``
``list-spaces``                                        ``/list-space``
``list-mappings``      [``port``]                      ``/list-mapping``
``list-flows``         ``port``, [``limit``, ``state``]  ``/list-unified-flow`` (+ kernel)
``counters``           ``port`` (``uplink`` too)        ``/get-port-counter`` (+ kernel, ring)
``rule-counters``      ``port``
``pa-ca-mapping``                                      ``Get-PACAMapping``
``provider-addresses``                                 ``Get-ProviderAddress`` (+ member)
``status``                                             agent, process, team members
``problems``                                           rows the agent skipped, and why
``trace``              ``port``, ``tokens``, [``direction``]  ``/process-tuples``
``export-connections``  ``port``                       a live migration's source side
``import-connections``  ``port``, ``connections``      its destination side
=====================  ==============================  ===================================

The last two are the live migration's (``hnv lab migrate``, docs/vfp.md "Live
migration"): the connection table of a VM port leaves the source host
(``vfp.migration.to_wire``) and is decided again at the destination's port, the only
op that changes the switch (as Hyper-V's hosts hand a port's VFP state over).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from openhnv.host.control import Handler, Params
from openhnv.host.errors import ControlError
from openhnv.host.frame_spec import parse_description
from openhnv.host.tracing import trace_frame, vm_port
from openhnv.packet.decode import describe
from openhnv.vfp.emits import UPLINK
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.listing import TableRow, Trace, parse_states
from openhnv.vfp.migration import ConnectionState, from_wire, to_wire
from openhnv.vfp.policy import Conditions
from openhnv.vswitch.driver import RingCounting
from openhnv.vswitch.switch import HostSwitch, PaConfig
from openhnv.vswitch.team import Placement


class AgentView(Protocol):
    """What the queries need of a ``HostAgent``."""

    def status(self) -> dict[str, Any]: ...

    def problems(self) -> list[dict[str, Any]]: ...


# -- argument helpers ------------------------------------------------------------------


def _text(params: Params, name: str, *, required: bool = True) -> str | None:
    value = params.get(name)
    if value is None:
        if required:
            raise ControlError(f"missing argument {name!r}")
        return None
    if not isinstance(value, str) or not value:
        raise ControlError(f"argument {name!r} must be a non-empty string, not {value!r}")
    return value


def _required(params: Params, name: str) -> str:
    value = _text(params, name)
    if value is None:  # _text raised already; this keeps the type exact
        raise ControlError(f"missing argument {name!r}")
    return value


def _limit(params: Params) -> int | None:
    value = params.get("limit")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ControlError(f"argument 'limit' must be a non-negative integer, not {value!r}")
    return value


# -- engine reads (run under the switch lock) ------------------------------------------


CONDITION_NAMES = {
    "src_macs": "smac", "dst_macs": "dmac", "src_prefixes": "src", "src_excluded": "src!",
    "dst_prefixes": "dst", "dst_excluded": "dst!", "protocols": "proto", "src_ports": "sport",
    "dst_ports": "dport", "vsids": "vsid", "ethertypes": "ethertype",
}  # fmt: skip
PROTOCOL_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}


def _condition_value(name: str, value: Any) -> str:
    items = sorted(value) if isinstance(value, frozenset) else list(value)
    parts = []
    for item in items:
        if isinstance(item, tuple):  # a port range
            lo, hi = item
            parts.append(str(lo) if lo == hi else f"{lo}-{hi}")
        elif name == "protocols":
            parts.append(PROTOCOL_NAMES.get(item, str(item)))
        elif name == "ethertypes":
            parts.append(f"0x{item:04x}")
        else:
            parts.append(str(item))
    return ",".join(parts)


def describe_conditions(conditions: Conditions) -> str:
    """A rule's conditions as ``dst=10.1.1.0/24 proto=tcp dport=1433`` (``any``: none)."""
    words = []
    for name, short in CONDITION_NAMES.items():
        value = getattr(conditions, name)
        if value is None or (name.endswith("_excluded") and not value):
            continue
        words.append(f"{short}={_condition_value(name, value)}")
    return " ".join(words) or "any"


def _group_rules(engine: VfpEngine, port: str, layer: str, group: str) -> list[TableRow]:
    rows = engine.listing.rules(port, layer, group)  # raises for an unknown port, layer or group
    p = engine.state.uplink if port == UPLINK else vm_port(engine, port)
    rules = p.layers[layer].groups[group].rules
    return [
        {"layer": layer, "group": group, **r,
         "conditions": describe_conditions(rules[r["rule_id"]].conditions)}
        for r in rows
    ]  # fmt: skip


def _rules(engine: VfpEngine, port: str, layer: str | None, group: str | None) -> list[TableRow]:
    if layer is not None and group is not None:
        return _group_rules(engine, port, layer, group)
    if layer is not None or group is not None:
        raise ControlError("list-rules takes both 'layer' and 'group', or neither")
    rows: list[TableRow] = []
    for x in engine.listing.layers(port):
        for g in engine.listing.groups(port, x["name"]):
            rows += _group_rules(engine, port, x["name"], g["name"])
    return rows


def _mappings(engine: VfpEngine, port: str | None) -> list[TableRow]:
    rows = engine.listing.mappings()
    if port is None:
        return rows
    p = vm_port(engine, port)
    return [r for r in rows if r["rdid"] == p.rdid]


def _mapping_filter(params: Params) -> dict[str, Any]:
    """The optional ``ca``, ``pa`` (IP addresses) and ``vsid`` filters of ``pa-ca-mapping``."""
    wanted: dict[str, Any] = {}
    for name, column in (("ca", "ca_ip_address"), ("pa", "pa_ip_address")):
        text = _text(params, name, required=False)
        if text is not None:
            try:
                wanted[column] = str(ipaddress.ip_address(text))
            except ValueError:
                raise ControlError(f"argument {name!r}: {text!r} is not an IP address") from None
    vsid = params.get("vsid")
    if vsid is not None:
        if not isinstance(vsid, int) or isinstance(vsid, bool) or vsid < 0:
            raise ControlError(f"argument 'vsid' must be a non-negative integer, not {vsid!r}")
        wanted["virtual_subnet_id"] = vsid
    return wanted


def pa_ca_mapping(engine: VfpEngine, params: Params | None = None) -> list[TableRow]:
    """The CA -> PA mappings, as ``Get-PACAMapping`` shows them; ``params`` may narrow
    them to one CA (``ca``), PA (``pa``) or virtual subnet (``vsid``)."""
    wanted = _mapping_filter(params or {})
    rows = _all_pa_ca_mappings(engine)
    if not wanted:
        return rows
    return [r for r in rows if all(r[k] == v for k, v in wanted.items())]


def _all_pa_ca_mappings(engine: VfpEngine) -> list[TableRow]:
    return [
        {
            "ca_ip_address": m["customer_address"],
            "ca_mac_address": m["customer_mac"],
            "virtual_subnet_id": m["vsid"],
            "pa_ip_address": m["provider_address"],
            "rdid": m["rdid"],
            "encapsulation": m["encapsulation"],
            "mapping_type": "local" if m["local"] else "remote",
        }
        for m in sorted(
            engine.listing.mappings(),
            key=lambda m: (m["vsid"], ipaddress.ip_address(m["customer_address"]), m["rdid"]),
        )
    ]


def _mask(prefix_length: int) -> str:
    return str(ipaddress.IPv4Network(f"0.0.0.0/{prefix_length}").netmask)


def provider_addresses(
    engine: VfpEngine,
    configs: Sequence[PaConfig] = (),
    placement: Mapping[str, Placement] | None = None,
) -> list[TableRow]:
    """This host's PAs, as ``Get-ProviderAddress`` shows them.

    ``configs`` are the switch's ``PaConfig``s (gateway IP and uplink interface: the
    PA's home team member); ``placement`` says which member carries each PA now and
    whether it moved there from its home (team failover).
    """
    by_address = {c.address: c for c in configs}
    rows = []
    for pa in engine.listing.provider_addresses():
        config = by_address.get(pa["address"])
        home = config.interface if config is not None else None
        where = (placement or {}).get(pa["address"])
        rows.append(
            {
                "provider_address": pa["address"],
                "mac_address": pa["mac"],
                "prefix_length": pa["prefix_length"],
                "subnet_mask": _mask(pa["prefix_length"]),
                "default_gateway": config.gateway if config is not None else None,
                "gateway_mac": pa["gateway_mac"],
                "vlan": f"VLAN{pa['vlan_id']}" if pa["vlan_id"] else "untagged",
                "vlan_id": pa["vlan_id"],
                "interface": home,
                "member": where.member if where is not None else home,
                "moved": where.moved if where is not None else False,
            }
        )
    return rows


def _flows(switch: HostSwitch, params: Params) -> list[TableRow]:
    """The port's unified flows (only those in the comma-separated ``state``s when
    given, vfp.listing.FLOW_STATES); with the kernel fast path, whether each is
    offloaded and what the kernel counted for it (read now)."""
    port = _required(params, "port")
    wanted = _text(params, "state", required=False)
    try:
        states = None if wanted is None else parse_states(wanted)
    except PolicyError as exc:
        raise ControlError(f"argument {exc}") from None
    rows = switch.inspect(lambda e: e.listing.flows(port, _limit(params), states))
    kernel = switch.kernel_flows(port, fresh=True)
    for row in rows:
        counted = kernel.get(row["key"])
        row["offloaded"] = counted is not None
        row["kernel_packets"], row["kernel_bytes"] = counted or (0, 0)
    return rows


def _counters(switch: HostSwitch, params: Params) -> TableRow:
    """The port's counters; the frames its socket filter dropped over the abuse limits
    (``kernel_drop:<reason>``); with the fast path, the kernel's packets and bytes for the
    port's offloaded flows and the host's fast-path hits and misses (``fastpath:*``); the
    QoS drops of the kernel's shapers added to the QoS layer's (``drop:qos_*``); what the
    driver's socket received (``ring``: a VM port's packet ring; ``rings``: each uplink's
    by name; vswitch.ring ``RECEIVE_COUNTERS``)."""
    port = _required(params, "port")
    row = switch.inspect(lambda e: e.listing.counters(port))
    row.update(_ring_counters(switch, port))
    kernel_drops = switch.kernel_limit_drops().get(port, {})
    row.update({f"kernel_drop:{reason}": n for reason, n in kernel_drops.items()})
    status = switch.fastpath_status()
    if status.get("state") == "on":
        packets, size = switch.kernel_port_totals(fresh=True).get(port, (0, 0))
        row["kernel_packets"], row["kernel_bytes"] = packets, size
        kernel = status.get("kernel")
        if isinstance(kernel, dict):
            row.update({f"fastpath:{k}": v for k, v in kernel.items() if v})
    for reason, dropped in switch.kernel_qos_drops().get(port, {}).items():
        counted = row.get(f"drop:{reason}", 0)  # the QoS layer's: Python's and the kernel's
        row[f"drop:{reason}"] = (counted if isinstance(counted, int) else 0) + dropped
    return row


def _ring_counters(switch: HostSwitch, port: str) -> TableRow:
    """``ring``: what VM ``port``'s socket received; ``rings``: each uplink's, for
    ``uplink``; {} when the driver has no such sockets."""
    driver = switch.driver
    if not isinstance(driver, RingCounting):
        return {}
    rings = driver.ring_counters()
    if port == UPLINK:
        return {"rings": {name: dict(c) for name, c in sorted(rings.uplinks.items())}}
    counted = rings.ports.get(port)
    return {} if counted is None else {"ring": dict(counted)}


def _list_ports(switch: HostSwitch) -> list[TableRow]:
    reported = switch.ports()
    rows = switch.inspect(lambda e: e.listing.ports())
    found_classes = switch.qos_status().get("ports")
    classes = found_classes if isinstance(found_classes, dict) else {}
    for row in rows:
        row["attached"] = row["name"] in reported
        row["programmed"] = True
        found = classes.get(row["name"])
        if found:  # its class on the uplinks (vswitch.htb): rate = its reservation
            row.update({f"qos_{k}": v for k, v in found.items()})
    programmed = {row["name"] for row in rows}
    for name, mac in sorted(reported.items()):
        if name not in programmed:
            rows.append({"name": name, "mac": mac, "attached": True, "programmed": False})
    return rows


# -- trace -------------------------------------------------------------------------------


def trace_row(t: Trace) -> TableRow:
    """A ``Trace`` as JSON-ready data (``lines`` is its text form)."""
    return {
        "port": t.port,
        "direction": t.direction,
        "flow": t.flow,
        "steps": [
            {
                "layer": s.layer,
                "group": s.group,
                "rule_id": s.rule_id,
                "priority": s.priority,
                "action": s.action,
                "note": s.note,
            }
            for s in t.steps
        ],
        "transposition": t.transposition.describe(),
        "copies": list(t.copies),
        "result": t.result,
        "then": trace_row(t.then) if t.then is not None else None,
    }


def _trace(switch: HostSwitch, params: Params) -> TableRow:
    port = _required(params, "port")
    tokens = params.get("tokens")
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise ControlError("argument 'tokens' must be a list of name=value strings")
    spec = parse_description(tokens)
    direction = _text(params, "direction", required=False) or spec.direction or "out"
    if direction not in ("in", "out"):
        raise ControlError(f"direction {direction!r}: expected out or in")
    if port == UPLINK:
        direction = "in"

    def run(engine: VfpEngine) -> TableRow:
        frame = trace_frame(engine, port, direction, spec)
        t = engine.listing.trace(port, direction, frame)  # type: ignore[arg-type]
        return {**trace_row(t), "frame": describe(frame), "lines": t.lines()}

    return switch.inspect(run)


# -- the op table ----------------------------------------------------------------------


def host_handlers(
    switch: HostSwitch,
    agent: AgentView,
    *,
    process_status: Callable[[], dict[str, Any]],
    gateway_status: Callable[[], dict[str, Any]] | None = None,
) -> Mapping[str, Handler]:
    """The control ops of one host (module docstring lists them)."""

    def compartments(_: Params) -> TableRow:
        if gateway_status is None:
            raise ControlError("this host does not run the gateway role (hnv host --role gateway)")
        return gateway_status()

    def port_op(fn: Callable[[VfpEngine, str], Any]) -> Handler:
        return lambda p: switch.inspect(lambda e: fn(e, _required(p, "port")))

    def status(_: Params) -> TableRow:
        return {**process_status(), "team": switch.team_status(), "agent": agent.status()}

    def problems(_: Params) -> list[TableRow]:
        return agent.problems()

    def provider(_: Params) -> list[TableRow]:
        configs, placement = switch.provider_addresses(), switch.placement()
        return switch.inspect(lambda e: provider_addresses(e, configs, placement))

    return {
        "ping": lambda _: {k: v for k, v in process_status().items() if k in ("name", "pid")},
        "list-ports": lambda _: _list_ports(switch),
        "list-layers": port_op(lambda e, p: e.listing.layers(p)),
        "list-groups": lambda p: switch.inspect(
            lambda e: e.listing.groups(_required(p, "port"), _required(p, "layer"))
        ),
        "list-rules": lambda p: switch.inspect(
            lambda e: _rules(
                e,
                _required(p, "port"),
                _text(p, "layer", required=False),
                _text(p, "group", required=False),
            )
        ),
        "list-spaces": lambda _: switch.inspect(lambda e: e.listing.spaces()),
        "list-mappings": lambda p: switch.inspect(
            lambda e: _mappings(e, _text(p, "port", required=False))
        ),
        "list-flows": lambda p: _flows(switch, p),
        "counters": lambda p: _counters(switch, p),
        "rule-counters": port_op(lambda e, p: e.listing.rule_counters(p)),
        "pa-ca-mapping": lambda p: switch.inspect(lambda e: pa_ca_mapping(e, p)),
        "provider-addresses": provider,
        "status": status,
        "problems": problems,
        "trace": lambda p: _trace(switch, p),
        "customer-routes": lambda _: switch.inspect(customer_routes),
        "compartments": compartments,
        "export-connections": lambda p: to_wire(switch.connection_states(_required(p, "port"))),
        "import-connections": lambda p: {
            "adopted": switch.adopt_connections(
                _required(p, "port"), _connections(p.get("connections"))
            )
        },
    }


def _connections(value: object) -> list[ConnectionState]:
    try:
        return from_wire(value)
    except PolicyError as exc:
        raise ControlError(f"argument {exc}") from None


def customer_routes(engine: VfpEngine) -> list[TableRow]:
    """The routes of every routing domain (Get-CustomerRoute): prefix -> next hop CA."""
    rows: list[TableRow] = []
    for table in engine.state.routes.all():
        for prefix in table.connected:
            rows.append({"rdid": table.rdid, "prefix": prefix, "next_hop": "", "type": "vnet"})
        for route in table.routes:
            rows.append(
                {"rdid": table.rdid, "prefix": route.prefix, "next_hop": route.next_hop,
                 "type": "static"}
            )  # fmt: skip
    return rows
