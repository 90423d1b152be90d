"""Namespaces and links: creation, per-thread entry, tolerant removal."""

from __future__ import annotations

import ipaddress
import os
import secrets
import threading
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from openhnv.lab import builder, netns
from openhnv.lab.errors import LabError
from openhnv.testing.namespaces import NamespacePair

pytestmark = pytest.mark.root


def _inode() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def test_namespace_has_lo_up_and_no_ipv6(netns_pair: NamespacePair) -> None:
    a, _ = netns_pair
    state = netns.exec_in(a, ["cat", "/sys/class/net/lo/operstate"]).stdout.strip()
    assert state in ("unknown", "up")
    assert (
        netns.exec_in(a, ["sysctl", "-n", "net.ipv6.conf.all.disable_ipv6"]).stdout.strip() == "1"
    )
    with pytest.raises(LabError, match="already exists"):
        netns.create_namespace(a)
    with pytest.raises(LabError, match="must start with 'hnv-'"):
        netns.create_namespace("other")


def test_veth_across_namespaces_carries_traffic(netns_pair: NamespacePair) -> None:
    a, b = netns_pair
    netns.add_veth(a, "x0", b, "y0", 1700)
    netns.set_up(a, "x0", mac="02:00:00:00:00:aa")
    netns.set_up(b, "y0")
    netns.add_address(a, "x0", ipaddress.IPv4Interface("10.99.0.1/30"))
    netns.add_address(b, "y0", ipaddress.IPv4Interface("10.99.0.2/30"))
    assert netns.link_mac(a, "x0") == "02:00:00:00:00:aa"
    assert "x0" not in netns.link_names(b)
    assert "y0" in netns.link_names(b)
    netns.exec_in(a, ["ping", "-c", "1", "-W", "2", "10.99.0.2"])
    with pytest.raises(LabError, match="no interface nope"):
        netns.set_up(a, "nope")
    with pytest.raises(LabError, match="longer than 15"):
        netns.add_veth(a, "a-name-that-is-too-long", b, "y1", 1500)


def test_in_namespace_switches_only_the_calling_thread(netns_pair: NamespacePair) -> None:
    a, b = netns_pair
    home = _inode()
    seen: dict[str, int] = {}

    def visit(name: str) -> None:
        with netns.in_namespace(name):
            seen[name] = _inode()
        seen[f"{name}-after"] = _inode()

    threads = [threading.Thread(target=visit, args=(n,)) for n in netns_pair]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({home, seen[a], seen[b]}) == 3
    assert seen[f"{a}-after"] == seen[f"{b}-after"] == home
    assert _inode() == home
    assert netns.run_in(a, _inode) == seen[a]


def test_removal_tolerates_already_gone(netns_pair: NamespacePair) -> None:
    a, _ = netns_pair
    assert netns.delete_namespace(a) is True
    assert netns.delete_namespace(a) is False
    with pytest.raises(LabError, match="cannot open"), netns.in_namespace(a):
        pass


def test_clean_removes_leftover_root_links_with_our_prefix(tmp_path: Path) -> None:
    name = f"hnv-t{secrets.token_hex(3)}"
    try:
        # A leftover as a crashed build might leave it: no address, down, no traffic.
        with IPRoute() as ipr:
            ipr.link("add", ifname=f"{name}a", kind="veth", peer={"ifname": f"{name}b"})
        report = builder.clean(f"{name}", run_root=tmp_path)
        assert set(report.links) >= {f"{name}a"}
        with IPRoute() as ipr:
            assert not ipr.link_lookup(ifname=f"{name}a")
            assert not ipr.link_lookup(ifname=f"{name}b")
    finally:
        netns.delete_root_links(name)
