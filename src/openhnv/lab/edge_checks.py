"""Live checks of a lab's edge: each tenant's way out works, and nothing else does.

Driven by the topology's ``virtual_gateways``; for each VNet with one, its first VM:

- ``Nat``: TCP and ping to the Internet's server (the public subnet's gateway), which
  sees the tenant's own public address; from the Internet, the public address answers
  only on its port mappings (unsolicited inbound reaches nothing);
- ``IPSec``: TCP and ping to the site's server through the tunnel, both ways, the
  server seeing the VM's CA; the site's charon lists the security association;
- ``L3``: TCP to the physical server (and the prefixes routed through it), and the
  server to the VM by its CA;
- isolation: no VM reaches another tenant's site or L3 network, even with the same CAs;
- bare-metal servers behind a TOR answer their own VNet's VMs only.

Servers are ``traffic.TcpResponder`` threads answering a line that names them, so an
answer says which tenant's machine it came from. ``edge_checks`` returns ``Check``
values (``hnv demo --gateways`` prints them, the root tests assert them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from openhnv.gateway.daemons import security_associations
from openhnv.lab import traffic
from openhnv.lab.edge import Connection, VirtualGateway
from openhnv.lab.edge_builder import EdgeNames
from openhnv.lab.edge_up import site_dir
from openhnv.lab.orchestrator import RunningLab
from openhnv.lab.topology import Vm

HTTP_PORT = 80
CLOSED_PORT = 22  # mapped by nobody: unsolicited inbound
REFUSED_SECONDS = 1.5
Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


class _Servers:
    """TCP responders in the lab's namespaces, by (namespace, address, port)."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack
        self.by_key: dict[tuple[str, str, int], traffic.TcpResponder] = {}

    def serve(self, namespace: str, address: str, port: int, who: str) -> traffic.TcpResponder:
        key = (namespace, address, port)
        if key not in self.by_key:
            answer = f"HTTP/1.0 200 OK\r\n\r\n{who}\n".encode()
            responder = traffic.TcpResponder(namespace, address, port, answer)
            self.by_key[key] = self._stack.enter_context(responder)
        return self.by_key[key]


def _answer(namespace: str, address: str, port: int = HTTP_PORT) -> str | None:
    reply = traffic.tcp_answer(namespace, address, port, b"GET / HTTP/1.0\r\n\r\n")
    return None if reply is None else reply.decode(errors="replace").split("\r\n\r\n")[-1].strip()


def _refused(namespace: str, address: str, port: int = HTTP_PORT) -> bool:
    """No answer comes (dropped, refused or unreachable)."""
    try:
        traffic.tcp_request(namespace, address, port, b"GET /\r\n", timeout=REFUSED_SECONDS)
    except OSError:
        return True
    return False


def _first_vm(running: RunningLab, network: str) -> Vm:
    return next(vm for vm in running.topology.vms if vm.virtual_network == network)


@contextlib.contextmanager
def _servers() -> Iterator[_Servers]:
    with contextlib.ExitStack() as stack:
        yield _Servers(stack)


def edge_checks(running: RunningLab, say: Say = print) -> list[Check]:
    """Every path of every virtual gateway, the isolation between them, bare metal."""
    checks: list[Check] = []
    edge = running.topology.edge
    with _servers() as servers:
        for vm in running.topology.vms:
            who = f"{vm.virtual_network} {vm.name}"
            servers.serve(running.vm_namespace(vm.name), str(vm.ip), HTTP_PORT, who)
        for vgw in edge.virtual_gateways:
            for conn in vgw.connections:
                kind = {"Nat": _nat, "IPSec": _ipsec, "L3": _l3}[conn.type]
                checks += kind(running, servers, vgw, conn, say)
        checks += _isolation(running, say)
        checks += _bare_metal(running, say)
    return checks


def _nat(
    running: RunningLab, servers: _Servers, vgw: VirtualGateway, conn: Connection, say: Say
) -> list[Check]:
    edge, names = running.topology.edge, EdgeNames(running.topology.name)
    network, subnet = edge.public_subnet() or (None, None)
    if network is None or subnet is None or subnet.gateway is None:
        return [Check(f"{vgw.name}/{conn.name}: a public subnet with a server", False)]
    internet, server = names.network(network.name), str(subnet.gateway)
    vm, public = _first_vm(running, vgw.virtual_network), running.edge.public_addresses[vgw.name]
    responder = servers.serve(internet, server, HTTP_PORT, f"{network.name} server")
    before = len(responder.peers)
    answer = _answer(running.vm_namespace(vm.name), server)
    seen = [p[0] for p in responder.peers[before:]]
    say(f"  {vm.name} ({vm.ip}) -> {server}:{HTTP_PORT}: {answer}; the server saw {seen}")
    pinged = traffic.ping(running.vm_namespace(vm.name), server) is not None
    checks = [
        Check(
            f"{vgw.virtual_network}: NAT, TCP to the {network.name} server from {public}",
            answer is not None and seen == [public],
            f"answer {answer!r}, server saw {seen}",
        ),
        Check(f"{vgw.virtual_network}: NAT, ping to {server}", pinged),
        Check(
            f"{vgw.virtual_network}: unsolicited inbound to {public}:{CLOSED_PORT} reaches nothing",
            _refused(internet, public, CLOSED_PORT) and _refused(internet, public, HTTP_PORT),
        ),
    ]
    for mapping in conn.port_mappings:
        backend = next(
            v for v in running.topology.vms
            if v.virtual_network == vgw.virtual_network and v.ip == mapping.to
        )  # fmt: skip
        who = f"{vgw.virtual_network} {backend.name}"
        servers.serve(running.vm_namespace(backend.name), str(backend.ip), mapping.to_port, who)
        answer = _answer(internet, public, mapping.port)
        say(f"  {network.name} -> {public}:{mapping.port}: {answer}")
        checks.append(
            Check(
                f"{vgw.virtual_network}: inbound {public}:{mapping.port} reaches {backend.name}",
                answer == who,
                f"answer {answer!r}",
            )
        )
    return checks


def _ipsec(
    running: RunningLab, servers: _Servers, vgw: VirtualGateway, conn: Connection, say: Say
) -> list[Check]:
    names, site = EdgeNames(running.topology.name), running.topology.edge.site(str(conn.site))
    vm, remote = _first_vm(running, vgw.virtual_network), names.site_server(site.name)
    responder = servers.serve(remote, str(site.server), HTTP_PORT, f"site {site.name} server")
    before = len(responder.peers)
    answer = _answer(running.vm_namespace(vm.name), str(site.server))
    seen = [p[0] for p in responder.peers[before:]]
    back = _answer(remote, str(vm.ip))
    say(f"  {vm.name} -> {site.server} (site {site.name}): {answer}; the server saw {seen}")
    say(f"  site {site.name} server -> {vm.ip}: {back}")
    sas = security_associations(site_dir(running.run_dir, site.name))
    return [
        Check(
            f"{vgw.virtual_network}: IPsec, TCP to site {site.name}'s server {site.server}",
            answer is not None and seen == [str(vm.ip)],
            f"answer {answer!r}, server saw {seen}",
        ),
        Check(
            f"{vgw.virtual_network}: IPsec, site {site.name} reaches {vm.name} by its CA",
            back == f"{vgw.virtual_network} {vm.name}",
            f"answer {back!r}",
        ),
        Check(
            f"{vgw.virtual_network}: IPsec, ping through the tunnel",
            traffic.ping(running.vm_namespace(vm.name), str(site.server)) is not None,
        ),
        Check(
            f"site {site.name}: charon lists the tunnel ESTABLISHED and INSTALLED",
            "ESTABLISHED" in sas and "INSTALLED" in sas,
            sas.strip().splitlines()[0] if sas.strip() else "no security association",
        ),
    ]


def _l3(
    running: RunningLab, servers: _Servers, vgw: VirtualGateway, conn: Connection, say: Say
) -> list[Check]:
    names, edge = EdgeNames(running.topology.name), running.topology.edge
    vm = _first_vm(running, vgw.virtual_network)
    server = next(s for s in edge.physical_servers if s.address == conn.peer)
    namespace, checks = names.physical(server.name), []
    for address in (server.address, *server.extra):
        servers.serve(namespace, str(address), HTTP_PORT, f"{server.name} {address}")
        answer = _answer(running.vm_namespace(vm.name), str(address))
        say(f"  {vm.name} -> {address} (L3, {conn.network}): {answer}")
        checks.append(
            Check(
                f"{vgw.virtual_network}: L3, TCP to {server.name} at {address}",
                answer == f"{server.name} {address}",
                f"answer {answer!r}",
            )
        )
    back = _answer(namespace, str(vm.ip))
    say(f"  {server.name} -> {vm.ip}: {back}")
    checks.append(
        Check(
            f"{vgw.virtual_network}: L3, {server.name} reaches {vm.name} by its CA",
            back == f"{vgw.virtual_network} {vm.name}",
            f"answer {back!r}",
        )
    )
    return checks


def _targets(running: RunningLab, vgw: VirtualGateway) -> list[tuple[str, str]]:
    """(what, address) of the private places a virtual gateway reaches: sites, L3 servers."""
    edge, found = running.topology.edge, []
    for conn in vgw.connections:
        if conn.type == "IPSec":
            found.append((f"site {conn.site}", str(edge.site(str(conn.site)).server)))
        elif conn.type == "L3" and conn.peer is not None:
            found.append((f"{conn.network} server", str(conn.peer)))
    return found


def _isolation(running: RunningLab, say: Say) -> list[Check]:
    checks: list[Check] = []
    edge = running.topology.edge
    for owner in edge.virtual_gateways:
        mine = set(_targets(running, owner))
        for other in edge.virtual_gateways:
            if other.virtual_network == owner.virtual_network:
                continue
            vm = _first_vm(running, other.virtual_network)
            for what, address in sorted(mine - set(_targets(running, other))):
                refused = _refused(running.vm_namespace(vm.name), address)
                say(f"  {vm.name} -> {address} ({owner.virtual_network}'s {what}): "
                    + ("nothing" if refused else "ANSWERED"))  # fmt: skip
                checks.append(
                    Check(
                        f"isolation: {other.virtual_network} cannot reach "
                        f"{owner.virtual_network}'s {what} {address}",
                        refused,
                    )
                )
    return checks


def _bare_metal(running: RunningLab, say: Say) -> list[Check]:
    checks: list[Check] = []
    for server in running.topology.edge.bare_metal:
        for network in running.topology.virtual_networks:
            vm = _first_vm(running, network.name)
            reached = traffic.ping(running.vm_namespace(vm.name), str(server.ip), count=2)
            own = network.name == server.virtual_network
            say(f"  {vm.name} -> bare metal {server.name} {server.ip}: "
                + ("reply" if reached is not None else "nothing"))  # fmt: skip
            verb = "reaches" if own else "cannot reach"
            checks.append(
                Check(
                    f"{network.name}: {verb} bare-metal {server.name} {server.ip} ({server.tor})",
                    (reached is not None) == own,
                )
            )
    return checks
