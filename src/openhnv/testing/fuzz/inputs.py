"""Fuzz targets of the text and JSON an operator or a client sends.

- ``northbound-put``: a PUT body (JSON) on one of the lab's figure 8 paths into a
  ``ControllerService``: it is stored or refused with a 4xx ``ApiError``, and a refused
  one changes nothing.
- ``host-frame-spec``: ``hnv trace`` frame descriptions: a ``FrameSpec`` or
  ``FrameSpecError``.
- ``host-control``: a control-socket request line: always an answer, never an exception.
- ``lab-topology``: a topology file (YAML): a ``Topology`` or ``TopologyError``.
"""

from __future__ import annotations

import contextlib
import functools
import json
from pathlib import Path
from typing import Any

from openhnv.controller.errors import ApiError
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore
from openhnv.host.control import handle_line
from openhnv.host.errors import FrameSpecError
from openhnv.host.frame_spec import parse_description
from openhnv.lab import resources
from openhnv.lab.errors import TopologyError
from openhnv.lab.topology import parse
from openhnv.testing.fuzz import FuzzFailure, Target

TOPOLOGY = """\
name: fuzz
encapsulation: vxlan
pa_subnets:
  - {name: pa1, prefix: 192.168.1.0/24, gateway: 192.168.1.1, vlan: 10}
  - {name: pa2, prefix: 192.168.2.0/24, gateway: 192.168.2.1}
hosts:
  - {name: host1, pa_subnet: pa1}
  - {name: host2, pa_subnet: pa2, uplinks: 2}
acls:
  - name: web-acl
    rules:
      - {name: web, protocol: TCP, source_prefix: "*", destination_prefix: 10.1.1.0/24,
         destination_ports: "80-81", action: Allow, priority: 100, type: Inbound}
      - {name: rest, protocol: All, source_prefix: Internet, destination_prefix: "*",
         action: Deny, priority: 200, type: Inbound}
virtual_networks:
  - name: contoso
    address_space: [10.1.0.0/16]
    subnets:
      - {name: web, prefix: 10.1.1.0/24, acl: web-acl}
      - {name: db, prefix: 10.1.2.0/24}
  - name: fabrikam
    address_space: 10.1.0.0/16
    subnets:
      - {name: web, prefix: 10.1.1.0/24}
vms:
  - {name: c1, host: host1, virtual_network: contoso, subnet: web, ip: 10.1.1.11}
  - {name: c2, host: host2, virtual_network: contoso, subnet: db, ip: 10.1.2.12}
  - {name: f1, host: host2, virtual_network: fabrikam, subnet: web, ip: 10.1.1.11}
"""
RUN_DIR = Path("/run/openhnv/fuzz")


@functools.cache
def _requests() -> tuple[tuple[str, str], ...]:
    """(path, JSON body) of every resource the lab PUTs for ``TOPOLOGY``, in order."""
    plan = resources.plan(parse(TOPOLOGY), RUN_DIR)
    return tuple((r.path, json.dumps(r.body)) for r in plan)


@functools.cache
def _service() -> ControllerService:
    service = ControllerService(SqliteStore(":memory:"))
    for path, body in _requests():
        service.put(path, json.loads(body))
    return service


def northbound_put(data: bytes) -> None:
    """The first byte picks the path; the rest is the body (inputs not JSON are skipped)."""
    if not data:
        return
    requests = _requests()
    path, original = requests[data[0] % len(requests)]
    try:
        body: Any = json.loads(data[1:])
    except (ValueError, RecursionError):
        return
    service = _service()
    before = service.snapshot()
    try:
        service.put(path, body)
    except ApiError as err:
        if not 400 <= err.status < 500 or not err.message:
            raise FuzzFailure(f"PUT {path}: refused with {err.status} {err.message!r}") from err
        if service.snapshot() != before:
            raise FuzzFailure(f"PUT {path}: refused ({err.message}) but the store changed") from err
        return
    service.put(path, json.loads(original))  # back to the lab's datacenter


def northbound_seeds() -> tuple[bytes, ...]:
    return tuple(bytes((i,)) + body.encode() for i, (_, body) in enumerate(_requests()))


def frame_spec(data: bytes) -> None:
    with contextlib.suppress(FrameSpecError):
        parse_description(data.decode("utf-8", "replace").split())


FRAME_SPECS = (
    b"src=10.1.1.11 dst=10.1.1.12 proto=tcp sport=5000 dport=80 flags=SA ttl=3",
    b"src=fd00::1 dst=fd00::2 proto=udp dport=53 dir=in vsid=5001 encap=nvgre",
    b"src=10.1.1.11 dst=10.1.1.1 smac=00:1d:d8:07:00:11 outer_src=192.168.2.20 "
    b"outer_dst=192.168.1.10 rdid=x",
)


def _echo(request: dict[str, Any]) -> object:
    return request["value"]


def control(data: bytes) -> None:
    answer = handle_line({"echo": _echo}, data)
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise FuzzFailure(f"control answered {answer!r} to {data!r}")


CONTROL_LINES = (b'{"op": "echo", "value": [1, "a", null]}', b'{"op": "nope"}', b"[]")


def topology(data: bytes) -> None:
    with contextlib.suppress(TopologyError):
        parse(data.decode("utf-8", "replace"))


TARGETS = (
    Target("northbound-put", northbound_put, northbound_seeds),
    Target("host-frame-spec", frame_spec, lambda: FRAME_SPECS),
    Target("host-control", control, lambda: CONTROL_LINES),
    Target("lab-topology", topology, lambda: (TOPOLOGY.encode(),)),
)
