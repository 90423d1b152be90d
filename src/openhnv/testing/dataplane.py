"""A lab fabric whose hosts run HostSwitch on the Linux driver (tests and the benchmark).

``DataplaneLab`` builds a topology with ``openhnv.lab.builder`` (VM, host, fabric and
router namespaces, VLAN access ports), gives each VM port its ifalias
``openhnv-port <port-id> <mac>``, puts static ARP entries into the VMs (no agent
answers ARP here), and programs each host's engine directly with VFP commands: the HNV
layers of its VMs and the mappings of every VM. Switches run in this process
(``start_switch``: the driver is made inside the host namespace) or as a subprocess of
this module (``SwitchProcess``, for the benchmark: ``python3 -m openhnv.testing.dataplane
--spec FILE`` in the host namespace prints ``ready``, then its statistics as JSON on each
``stats`` line, and stops when stdin closes). Traffic goes through the lab's own helpers
(``lab.traffic``), waits through ``eventually``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from openhnv.lab import builder, daemons, netns, traffic
from openhnv.lab.topology import Topology, from_document
from openhnv.testing.datapath_mode import fastpath_mode
from openhnv.testing.polling import eventually
from openhnv.testing.processes import cpu_times
from openhnv.vfp import commands as c
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.layout import hnv_port_commands
from openhnv.vfp.limits import NO_LIMITS, PortLimits
from openhnv.vfp.qos import NO_QOS, QosSettings
from openhnv.vfp.spaces import Mapping
from openhnv.vswitch.driver import PaConfig
from openhnv.vswitch.linux import LinuxDriver
from openhnv.vswitch.portlinks import port_alias
from openhnv.vswitch.switch import HostSwitch

ROUTER_MAC = "02:00:5e:00:01:01"
BRIDGE_NETFILTER = (
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "net/bridge/bridge-nf-call-arptables",
)
MODULE = "openhnv.testing.dataplane"
READY_WAIT = 10.0  # seconds for a driver to report its ports and resolve its next hops


def lab_name(tag: str) -> str:
    """A lab name unique to this process: ``lx`` + tag + pid digits + random (≤ 12)."""
    return f"lx{tag}{os.getpid() % 1000:03d}{secrets.token_hex(2)}"[:12]


def document(
    name: str,
    *,
    routed: bool = False,
    vlan: int = 0,
    encapsulation: str = "vxlan",
    vms: Sequence[tuple[str, str]] = (("v1", "h1"), ("v2", "h2")),
    extra_hosts: Sequence[str] = (),
    uplinks: int = 1,
) -> dict[str, Any]:
    """A topology: hosts h1 (and h2) with one uplink; one PA subnet (tagged with
    ``vlan``), or two joined by the router (``routed``: h2's subnet carries ``vlan``);
    VMs (name, host) numbered 10.0.0.11... in VSID 5001."""
    subnets: list[dict[str, Any]] = [
        {"name": "pa1", "prefix": "192.168.1.0/24", "gateway": "192.168.1.1", "vlan": vlan,
         "ip_pool": "192.168.1.10-192.168.1.99"},
    ]  # fmt: skip
    host_subnet = {"h1": "pa1", "h2": "pa1"}
    if routed:
        subnets[0]["vlan"] = 0
        subnets.append({"name": "pa2", "prefix": "192.168.2.0/24", "gateway": "192.168.2.1",
                        "vlan": vlan, "ip_pool": "192.168.2.20-192.168.2.99"})  # fmt: skip
        host_subnet["h2"] = "pa2"
    hosts = [{"name": h, "pa_subnet": host_subnet[h], "uplinks": uplinks} for h in ("h1", "h2")]
    hosts += [{"name": h, "pa_subnet": "pa1", "uplinks": 1} for h in extra_hosts]
    return {
        "name": name,
        "encapsulation": encapsulation,
        "pa_subnets": subnets,
        "hosts": hosts,
        "virtual_networks": [
            {
                "name": "vnet",
                "address_space": "10.0.0.0/24",
                "subnets": [{"name": "s1", "prefix": "10.0.0.0/24", "vsid": 5001}],
            }
        ],
        "vms": [
            {
                "name": vm,
                "host": host,
                "virtual_network": "vnet",
                "subnet": "s1",
                "ip": f"10.0.0.{11 + i}",
                "mac": f"02:00:00:00:01:{11 + i:02x}",
            }
            for i, (vm, host) in enumerate(vms)
        ],
    }


def port_id(vm: str) -> str:
    return f"nic-{vm}"


class DataplaneLab:
    """A built topology plus the switches started on it; a context manager that
    removes everything on exit, also after a failure. ``fastpath``: the switches' kernel
    fast path (on: the VMs keep their offloads; default: ``fastpath_mode()``);
    ``limits``: the abuse limits of their VM ports (default none), metered in XDP on the
    ports with ``xdp_meter`` (else in their socket filters); ``qos``: the QoS caps of
    every VM port (default none)."""

    def __init__(
        self,
        doc: dict[str, Any],
        run_root: Path,
        fastpath: str | None = None,
        underlay_mtu: int = builder.UNDERLAY_MTU,
        limits: PortLimits = NO_LIMITS,
        qos: QosSettings = NO_QOS,
        xdp_meter: bool = False,
    ) -> None:
        self.topology: Topology = from_document(doc)
        self.xdp_meter = xdp_meter
        self.limits = limits
        self.qos = qos
        self.run_root = run_root
        self.fastpath = fastpath_mode() if fastpath is None else fastpath
        self.underlay_mtu = underlay_mtu
        self.lab: builder.Lab | None = None
        self.switches: dict[str, HostSwitch] = {}
        self.processes: list[SwitchProcess] = []
        self.cleanups: list[Callable[[], None]] = []

    def __enter__(self) -> DataplaneLab:
        try:
            offloads = self.fastpath == "on"
            self.lab = builder.build(self.topology, self.run_root, vm_offloads=offloads,
                                     underlay_mtu=self.underlay_mtu)  # fmt: skip
            for key in BRIDGE_NETFILTER:  # a physical switch runs no iptables on frames
                netns.set_sysctl(self.names.fabric, key, "0")
            for vm in self.topology.vms:
                self.set_port_alias(vm.name)
                for other in self.topology.vms:
                    if other.name != vm.name:
                        traffic.set_neighbor(self.vm_ns(vm.name), str(other.ip), str(other.mac))
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for process in self.processes:
            process.stop()
        for switch in self.switches.values():
            switch.stop()
        for cleanup in reversed(self.cleanups):
            cleanup()
        builder.teardown(self.topology, self.run_root)

    # -- names -------------------------------------------------------------------------

    @property
    def names(self) -> builder.LabNames:
        return builder.LabNames(self.topology.name)

    def vm_ns(self, vm: str) -> str:
        return self.names.vm(vm)

    def host_ns(self, host: str) -> str:
        return self.names.host(host)

    def pa(self, host: str, uplink: int = 0) -> str:
        """The PA of ``host``'s ``uplink``: its subnet's pool, in host then uplink order."""
        h = self.topology.host(host)
        subnet = self.topology.pa_subnet(h.pa_subnet)
        before = 0
        for x in self.topology.hosts:
            if x.name == host:
                break
            if x.pa_subnet == h.pa_subnet:
                before += x.uplinks
        return str(subnet.ip_pool[0] + before + uplink)

    def pa_configs(self, host: str) -> list[PaConfig]:
        """One PaConfig per uplink of ``host``."""
        h = self.topology.host(host)
        subnet = self.topology.pa_subnet(h.pa_subnet)
        return [PaConfig(self.pa(host, i), subnet.prefix.prefixlen, subnet.vlan or None,
                         str(subnet.gateway), self.names.uplink(i))
                for i in range(h.uplinks)]  # fmt: skip

    def pa_config(self, host: str) -> PaConfig:
        return self.pa_configs(host)[0]

    def vm_ip(self, vm: str) -> str:
        return str(self.topology.vm(vm).ip)

    # -- setup -------------------------------------------------------------------------

    def set_port_alias(self, vm: str, host_name: str | None = None) -> None:
        """The alias that makes ``vm``'s veth host end its port (on ``host_name``, default
        the topology's host: a test that moves the link names its new host)."""
        mac = self.topology.vm(vm).mac
        assert mac is not None, f"the data-plane topology gives {vm} a MAC"
        host = self.host_ns(host_name or self.topology.vm(vm).host)
        netns.set_alias(host, self.names.vm_port(vm), port_alias(port_id(vm), mac))

    def spec(self, host: str, extra_mappings: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
        """What to program into ``host``'s switch (JSON-able)."""
        encapsulation = self.topology.encapsulation
        vms = self.topology.vms
        return {
            "pas": [_pa_dict(pa) for pa in self.pa_configs(host)],
            "ports": [{"port": port_id(v.name), "mac": v.mac, "ip": str(v.ip)}
                      for v in vms if v.host == host],
            "mappings": [{"rdid": "vnet", "customer_address": str(v.ip),
                          "provider_address": self.pa(v.host), "customer_mac": v.mac,
                          "vsid": 5001, "encapsulation": encapsulation} for v in vms]
                        + list(extra_mappings),
            "limits": self.limits.as_dict(),
            "xdp_meter": self.xdp_meter,
            "qos": {"outbound_max_mbps": self.qos.outbound_max_mbps,
                    "inbound_max_mbps": self.qos.inbound_max_mbps,
                    "outbound_reserved_mbps": self.qos.outbound_reserved_mbps},
        }  # fmt: skip

    def start_switch(self, host: str, extra_mappings: Sequence[dict[str, Any]] = ()) -> HostSwitch:
        """A HostSwitch on a LinuxDriver made in ``host``'s namespace, programmed."""
        driver = netns.run_in(self.host_ns(host), LinuxDriver, fastpath=self.fastpath,
                              xdp_meter=self.xdp_meter)  # fmt: skip
        switch = HostSwitch(VfpEngine(limits=self.limits), driver)
        self.switches[host] = switch
        switch.start()
        program(switch, self.spec(host, extra_mappings))
        return switch

    def start_process(
        self, host: str, spec_dir: Path, fastpath: str | None = None
    ) -> SwitchProcess:
        """``host``'s switch in its own process; ``fastpath``: its mode when not the lab's
        (the VMs keep the offloads the lab gave them)."""
        path = spec_dir / f"{self.topology.name}-{host}.json"
        path.write_text(json.dumps(self.spec(host)))
        process = SwitchProcess(self.host_ns(host), path, fastpath or self.fastpath)
        self.processes.append(process)
        return process

    def ping(self, vm: str, ip: str, count: int = 3) -> bool:
        """Whether an echo of ``count`` from ``vm`` to ``ip`` came back (``traffic.ping``)."""
        return traffic.ping(self.vm_ns(vm), ip, count) is not None


def _pa_dict(pa: PaConfig) -> dict[str, Any]:
    return {"address": pa.address, "prefix_length": pa.prefix_length, "vlan_id": pa.vlan_id,
            "gateway": pa.gateway, "interface": pa.interface}  # fmt: skip


def program(switch: HostSwitch, spec: dict[str, Any]) -> None:
    """Ports with the HNV layers, every mapping, then the PAs."""
    commands: list[c.Command] = []
    qos = QosSettings(**spec.get("qos", {}))
    for p in spec["ports"]:
        add = c.AddPort(p["port"], p["mac"], 5001, "vnet", (p["ip"],), qos=qos)
        commands += hnv_port_commands(add, router_mac=ROUTER_MAC, vnet_prefixes=["10.0.0.0/24"])
    commands += [c.AddMapping(Mapping(**m)) for m in spec["mappings"]]
    switch.apply(commands)
    switch.set_provider_addresses([PaConfig(**pa) for pa in spec["pas"]])


def wait_ready(switch: HostSwitch, ports: int, neighbors: Sequence[str]) -> None:
    """Until the driver reported ``ports`` ports and resolved ``neighbors``."""
    eventually(lambda: len(switch.ports()) >= ports, f"{ports} ports", READY_WAIT)
    eventually(
        lambda: set(neighbors) <= set(switch.neighbors()), f"neighbors {neighbors}", READY_WAIT
    )


class SwitchProcess:
    """A host switch in its own process, inside the host namespace."""

    def __init__(self, namespace: str, spec: Path, fastpath: str = "off") -> None:
        argv = ["ip", "netns", "exec", namespace, sys.executable, "-m", MODULE, "--spec", str(spec),
                "--fastpath", fastpath]  # fmt: skip
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=daemons.python_env()
        )
        self.result: dict[str, Any] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != "ready":
            self.stop()
            raise RuntimeError(f"switch process did not start: {line!r}")

    def cpu_times(self) -> tuple[float, float]:
        """(user, system) CPU seconds of the process so far (``ip netns exec`` execs it)."""
        return cpu_times(self.pid)

    def statistics(self) -> dict[str, Any]:
        """Ask for the driver's counters (one line on stdin)."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        return dict(json.loads(self.process.stdout.readline()))

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            try:
                self.process.stdin.close()
                self.process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one host switch inside the current namespace until stdin closes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True)
    parser.add_argument("--fastpath", default="off", choices=("on", "off", "auto"))
    args = parser.parse_args(argv)
    spec = json.loads(Path(args.spec).read_text())
    driver = LinuxDriver(fastpath=args.fastpath, xdp_meter=bool(spec.get("xdp_meter", False)))
    limits = PortLimits(**spec["limits"]) if "limits" in spec else NO_LIMITS
    switch = HostSwitch(VfpEngine(limits=limits), driver)
    switch.start()
    try:
        program(switch, spec)
        ports = len(spec["ports"])
        pas = {m["provider_address"] for m in spec["mappings"]} - {
            p["address"] for p in spec["pas"]
        }
        on_link = [a for a in pas if any(PaConfig(**p).on_link(a) for p in spec["pas"])]
        gateways = [p["gateway"] for p in spec["pas"] if p["gateway"]]
        wait_ready(switch, ports, on_link + gateways)
        print("ready", flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                stats: dict[str, object] = dict(driver.statistics())
                stats["uplink"] = switch.inspect(lambda e: dict(e.state.uplink.counters))
                stats["ports"] = switch.inspect(
                    lambda e: {n: p.all_counters() for n, p in e.state.ports.items()}
                )
                stats["kernel_limit_drops"] = switch.kernel_limit_drops()
                stats["kernel_metering"] = driver.metering_status()
                if driver.fast_path is not None:
                    kernel = driver.fast_path.counters.read()
                    stats["kernel_hits"] = sum(v for k, v in kernel.items() if k.startswith("hit_"))
                    stats["kernel"] = kernel
                    stats["edge"] = switch.fastpath_status().get("edge", {})
                print(json.dumps(stats), flush=True)
    finally:
        switch.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
