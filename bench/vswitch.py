"""Packets per second VM to VM through HostSwitch + EmulatedDriver (the fast path).

Two hosts on one PA subnet (untagged, then VLAN-tagged), a VM on each, HNV layers on
both ports; the VM on host 1 sends UDP over ``--flows`` flows in batches of ``--batch``
to the VM on host 2 (encapsulate, carry, decapsulate, deliver), and to a VM on its own
host (local delivery). Flows are set up first, so what is timed is the fast path of
both switches plus the driver and network. Prints one JSON object; ``--smoke`` runs a
tiny count.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from openhnv.packet.frames import udp_frame
from openhnv.vfp import commands as c
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.layout import hnv_port_commands
from openhnv.vfp.spaces import Mapping
from openhnv.vswitch.emulated import EmulatedDriver, EmulatedNetwork
from openhnv.vswitch.switch import HostSwitch, PaConfig

ROUTER = "40:1d:d8:b7:1c:06"
RDID = "rdid-bench"
VSID = 5001
DNS_PORT = 53  # any UDP destination: the flows differ by source port
PAS = {"h1": "192.168.1.10", "h2": "192.168.1.20"}
VMS = {  # name: host, mac, ip
    "vm1": ("h1", "00:1d:d8:00:00:01", "10.1.1.11"),
    "vm2": ("h2", "00:1d:d8:00:00:02", "10.1.1.12"),
    "vm3": ("h1", "00:1d:d8:00:00:03", "10.1.1.13"),
}


def build(vlan: int | None) -> tuple[EmulatedNetwork, list[HostSwitch]]:
    network = EmulatedNetwork()
    network.add_subnet("rack", "192.168.1.0/24", vlan_id=vlan, gateway="192.168.1.1")
    switches = []
    for host, pa in PAS.items():
        network.add_host(host, {"up0": "rack"})
        sw = HostSwitch(VfpEngine(), EmulatedDriver(network, host), expire_interval=None)
        cmds: list[c.Command] = []
        for name, (vm_host, mac, ip) in VMS.items():
            cmds.append(c.AddMapping(Mapping(RDID, ip, PAS[vm_host], mac, VSID)))
            if vm_host == host:
                network.add_vm_port(host, name, mac)
                port = c.AddPort(name, mac, VSID, RDID, (ip,))
                cmds += hnv_port_commands(port, router_mac=ROUTER, vnet_prefixes=["10.1.0.0/16"])
        sw.start()
        sw.set_provider_addresses([PaConfig(pa, 24, vlan, "192.168.1.1", "up0")])
        sw.apply(cmds)
        switches.append(sw)
    return network, switches


def packets_per_second(vlan: int | None, to: str, count: int, flows: int, batch: int) -> float:
    network, switches = build(vlan)
    _, src_mac, src_ip = VMS["vm1"]
    dst_host, dst_mac, dst_ip = VMS[to]
    frames = [
        udp_frame(src_mac=src_mac, dst_mac=dst_mac, src_ip=src_ip, dst_ip=dst_ip,
                  src_port=10_000 + i, dst_port=DNS_PORT, payload=b"x")
        for i in range(flows)
    ]  # fmt: skip
    n = max(1, flows // batch)
    batches = [[frames[(b * batch + i) % flows] for i in range(batch)] for b in range(n)]
    for b in batches:  # set the flows up (slow path) before timing
        network.send_batch_from_vm("h1", "vm1", b)
    network.received(dst_host, to)
    rounds = max(1, count // batch)
    start = time.perf_counter()
    got = 0
    for r in range(rounds):
        network.send_batch_from_vm("h1", "vm1", batches[r % len(batches)])
        got += len(network.received(dst_host, to))
    elapsed = time.perf_counter() - start
    if got != rounds * batch:
        raise SystemExit(f"bench: {got} of {rounds * batch} frames arrived at {to}")
    hits = switches[0].inspect(lambda e: e.listing.counters("vm1"))["uft_hits"]
    if hits < got:
        raise SystemExit(f"bench: only {hits} of {got} frames took the fast path")
    for sw in switches:
        sw.stop()
    return round(got / elapsed)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a tiny run")
    parser.add_argument("--flows", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    count = 2_000 if args.smoke else 200_000
    result: dict[str, object] = {"frames": count, "flows": args.flows, "batch": args.batch}
    result["remote_pps"] = packets_per_second(None, "vm2", count, args.flows, args.batch)
    result["remote_vlan_pps"] = packets_per_second(20, "vm2", count, args.flows, args.batch)
    result["local_pps"] = packets_per_second(None, "vm3", count, args.flows, args.batch)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
