"""The lab's access port for the PA router: its command line (the relay's frame rules are
``vswitch.accessport``'s, tested there)."""

from __future__ import annotations

from openhnv.lab.vlanport import main


def test_bad_vlan_argument_exits_2() -> None:
    argv = ["--netns", "hnv-none", "--trunk", "a", "--access", "b", "--vlan", "0"]
    assert main([*argv, "--pidfile", "/nonexistent/p.pid"]) == 2
