"""The switch's side of the kernel fast path: when the engine's offloads reach the kernel.

``KernelSide`` is what ``HostSwitch`` calls, always under the switch's lock, so the
kernel's maps change in the engine's order:

- ``apply_pending()``: the flows the slow path paired go down once the notes are due
  (``Offloader.due``: an offered flow changed, or a paired connection carried frames
  past its handshake), at the end of the driver's polling round
  (``round_done``), after the frames of that round left: neither a connection's
  first packet nor the frame that pairs it waits for a write, nor shares the CPU with
  one on its way (frames of the connection that come before the entries take the
  slow path, which decided them already). Always before the agent's commands and PA
  changes (so their revalidation covers what waited), and after expiry;
- ``after_commands(batch, before, after)``: after the agent's commands: the offered
  flows the change may affect are decided again (``VfpEngine.revalidate``: the ports
  whose policy changed, the customer addresses whose mapping changed) and rewritten,
  and the generations of the changed ports move, before ``HostSwitch.apply`` returns;
- ``after_spaces()``: after a change of PAs or PA neighbours: every offered flow;
- ``rehome(addresses)``: after PAs moved to another team member: the entries that
  send from them are written again with the new member's ifindex;
- ``after_port_attached(port)``: a VM port's interface appeared: its flows again;
- ``read_stats()`` / ``after_expiry_stats(stats)``: the kernel's last-used times before
  the engine expires flows, and the withdrawals of what expired;
- the QoS layer's caps (``qoskernel.KernelQos``): synced after the agent's commands and
  after each expiry pass;
- ``revalidate_adopted(ports)``: once after a restart, when the engine is programmed and
  the driver reports its ports: every entry the earlier process left is decided again
  from its key (VM port entries, then uplink entries, then once more, so that both
  directions of a connection pair up), kept when the decision is the same, rewritten
  when it changed, deleted when nothing offers it any more.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from openhnv.packet.addresses import mac_to_bytes
from openhnv.vfp import commands as c
from openhnv.vfp.emits import UPLINK
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.spaces import Mapping as CaMapping
from openhnv.vswitch.fastpath import entries
from openhnv.vswitch.fastpath.errors import FastPathError
from openhnv.vswitch.offload import KernelOffload, KernelStats
from openhnv.vswitch.qoskernel import KernelQos

log = logging.getLogger(__name__)

_POLICY_COMMANDS = (c.AddLayer, c.RemoveLayer, c.AddGroup, c.RemoveGroup, c.AddRule,
                    c.AddRules, c.RemoveRule)  # fmt: skip
_PORT_COMMANDS = (c.AddPort, c.RemovePort, c.SetPortState)
_REVALIDATION_PASSES = 2  # the second pass pairs what the first decided one way only


def changed_ports(batch: Iterable[c.Command]) -> set[str]:
    """The ports whose own policy (layers, groups, rules, state) or port the batch changes."""
    found = set()
    for command in batch:
        if isinstance(command, _POLICY_COMMANDS):
            found.add(command.port)
        elif isinstance(command, _PORT_COMMANDS):
            found.add(command.name)
    return found


def mapping_addresses(mappings: Iterable[CaMapping | None]) -> set[bytes]:
    """The MACs and IPv4 addresses of customer addresses whose mapping changed."""
    found: set[bytes] = set()
    for m in mappings:
        if m is None:
            continue
        found.add(mac_to_bytes(m.customer_mac))
        try:
            found.add(bytes(int(part) for part in m.customer_address.split(".")))
        except ValueError:
            continue  # an IPv6 CA: the kernel holds no IPv6 flows
    return found


class KernelSide:
    """The engine's offloads and the kernel (module docstring)."""

    def __init__(self, engine: VfpEngine, kernel: KernelOffload) -> None:
        self.engine = engine
        self.kernel = kernel
        self.qos = KernelQos(kernel.maps.qos, kernel.places.port_ifindex)
        engine.offload.enable()

    def sync_qos(self) -> None:
        """The kernel's QoS buckets after the engine's ports (``qoskernel``)."""
        try:
            self.qos.sync((name, p.qos) for name, p in self.engine.state.ports.items())
        except FastPathError as exc:  # the Python layer still polices what it carries
            log.warning("fast path: QoS buckets not synced: %s", exc)

    def apply_pending(self) -> None:
        """What the notes change goes down."""
        offload = self.engine.offload
        if offload.pending:
            self.kernel.apply(offload.operations())

    def after_commands(
        self,
        batch: Sequence[c.Command],
        mappings: Iterable[CaMapping | None],
    ) -> None:
        offload = self.engine.offload
        self.kernel.builder.forget()
        ports = changed_ports(batch)
        addresses = mapping_addresses(mappings)
        heads = offload.revalidation_set(ports=ports, addresses=addresses)
        if heads:
            self.engine.revalidate(heads)
        self.kernel.apply(offload.operations(), bump=ports)
        for command in batch:
            if isinstance(command, c.RemovePort):
                self.kernel.forget_port(command.name)
        self.sync_qos()

    def after_port_attached(self, port: str) -> None:
        """The driver reported VM ``port``'s interface: its slot is that interface's, and
        the flows decided before it came (adopted connections of a live migration) go
        down now that their entries can name it."""
        self.kernel.forget_port(port)
        self.engine.offload.port_attached(port)
        self.kernel.apply(self.engine.offload.operations())

    def after_spaces(self) -> None:
        offload = self.engine.offload
        self.kernel.builder.forget()
        heads = offload.revalidation_set(everything=True)
        if heads:
            self.engine.revalidate(heads)
        self.kernel.apply(offload.operations())

    def rehome(self, addresses: set[str]) -> None:
        """PAs ``addresses`` moved to another team member: their entries are written
        again, leaving by the new member (``KernelOffload.rehome``)."""
        self.kernel.rehome(addresses)

    def read_stats(self) -> KernelStats:
        return self.kernel.read_stats()

    def after_expiry_stats(self, stats: KernelStats, now: float) -> None:
        self.kernel.apply_stats(stats, self.engine.offload, now)
        self.sync_qos()  # a port whose veth appeared since gets its buckets
        self.kernel.builder.forget()  # an uplink's MTU read again within an expiry pass

    def revalidate_adopted(self, ports: Mapping[int, str], final: bool = True) -> dict[str, int]:
        """Decide again what an earlier process left (module docstring); ``ports`` maps
        the ifindex of each VM port's veth host end to the port. An entry the engine does
        not offer again yet (its port not programmed, its remote PA not resolved) stays
        ``pending`` unless ``final``, which deletes it. Returns counts ({} when nothing
        was adopted or the adoption is over)."""
        kernel = self.kernel
        if not kernel.adopting:
            return {}
        port_keys, uplink_keys = kernel.adopted_keys()
        work: list[tuple[str, bytes]] = []
        for key in port_keys:
            port = ports.get(key.ifindex)
            frame = entries.frame_of_flow(key.flow)
            if port is not None and frame is not None and port in self.engine.state.ports:
                work.append((port, frame))
        for ukey in uplink_keys:
            frame = entries.frame_of_uplink_key(ukey)
            if frame is not None:
                work.append((UPLINK, frame))
        for _ in range(_REVALIDATION_PASSES):
            for port, frame in work:
                self.engine.replay(port, frame)
        kernel.apply(self.engine.offload.operations())
        counts = {"adopted": kernel.adopted_total, "kept": kernel.counters["adopted_kept"],
                  "rewritten": kernel.counters["adopted_rewritten"]}  # fmt: skip
        ports_left, uplinks_left = kernel.adopted_keys()
        pending = len(ports_left) + len(uplinks_left)
        if pending and not final:
            return {**counts, "pending": pending}
        counts["deleted"] = kernel.finish_adoption()
        log.info("fast path adopted: %s", counts)
        return counts

    def status(self) -> dict[str, Any]:
        kernel = self.kernel
        global_counters: dict[str, Any]
        try:
            global_counters = dict(kernel.maps.counters.read())
        except Exception as exc:  # a closed fast path answers nothing, never fails a status
            global_counters = {"error": str(exc)}
        return {
            "entries": kernel.entries(),
            "adopting": kernel.adopting,
            "edge": dict(kernel.counters),
            "kernel": global_counters,
        }
