"""The data plane outlives its process: ``kill -9`` of ``hnv host`` under live flows.

A lab (controller, two hosts, two VMs; ``lab_running``) with the kernel fast path on:
iperf3 sends UDP at a steady rate from the VM on h1 to the VM on h2, and an
established TCP connection between them echoes data; halfway, h1's ``hnv host`` is
killed with SIGKILL. While no process runs there, the TCP connection still carries
data (the kernel forwards it); then ``hnv host`` starts again over the same state
directory, adopts the kernel's entries (``FastPath.open``), decides them again from
what it reprograms out of OVSDB and keeps them. The UDP packets lost are printed (the
gap, at the stream's rate) and must be a handful at most.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from lab_running import network, running_lab, subnet, two_hosts, vm

from openhnv.host.control import call
from openhnv.host.errors import ControlError
from openhnv.lab import daemons, netns, orchestrator

pytestmark = [pytest.mark.root, pytest.mark.fastpath]

NETWORKS = [network("vnet", "10.6.0.0/16", subnet("s1", "10.6.1.0/24"))]
VMS = [vm("a", "h1", "10.6.1.10", "vnet", "s1"), vm("b", "h2", "10.6.1.11", "vnet", "s1")]
UPLINKS = 2  # the lab's default team, as this test always ran
SECONDS = 8
RATE = "8M"  # 1000 datagrams per second of 1000 bytes
LENGTH = 1000
KILL_AFTER = 2.5
HANDFUL = 10
READY_SECONDS = 30.0
ECHO_PORT = 7007
ECHOED = 200_000  # bytes per exchange over the TCP connection


def wait_for_new_host(state_dir: Path, pid: int) -> dict[str, object]:
    """The restarted host's status once it answers with its new pid."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        try:
            status = call(state_dir, "status", timeout=2.0)
            if isinstance(status, dict) and status.get("pid") == pid:
                return status
        except ControlError:
            pass
        time.sleep(0.1)
    raise TimeoutError("the restarted hnv host did not answer")


class Echo:
    """A TCP echo server in one VM and one connection to it from another, kept open."""

    def __init__(self, server_ns: str, server_ip: str, client_ns: str) -> None:
        with netns.in_namespace(server_ns):
            self.server = socket.create_server((server_ip, ECHO_PORT))
        threading.Thread(target=self._serve, daemon=True).start()
        with netns.in_namespace(client_ns):
            self.conn = socket.create_connection((server_ip, ECHO_PORT), timeout=10)

    def _serve(self) -> None:
        try:
            peer, _ = self.server.accept()
        except OSError:
            return
        with peer:
            while data := peer.recv(65536):
                peer.sendall(data)

    def exchange(self, size: int = ECHOED) -> None:
        """Send ``size`` bytes and read them back (``TimeoutError`` when they stop)."""
        payload = os.urandom(size)
        sender = threading.Thread(target=self.conn.sendall, args=(payload,), daemon=True)
        sender.start()
        got = bytearray()
        while len(got) < size:
            chunk = self.conn.recv(65536)
            if not chunk:
                raise ConnectionError("the echo server closed the connection")
            got += chunk
        sender.join()
        assert bytes(got) == payload

    def close(self) -> None:
        self.conn.close()
        self.server.close()


def test_kill_9_of_hnv_host_loses_only_a_handful_of_packets() -> None:
    with running_lab(two_hosts(NETWORKS, VMS, uplinks=UPLINKS)) as lab:
        server = subprocess.Popen(
            ["ip", "netns", "exec", lab.vm_namespace("b"), "iperf3", "-s", "-1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(0.5)
        argv = ["iperf3", "-c", "10.6.1.11", "-u", "-b", RATE, "-l", str(LENGTH),
                "-t", str(SECONDS), "-J"]  # fmt: skip
        client = subprocess.Popen(["ip", "netns", "exec", lab.vm_namespace("a"), *argv],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
        echo = Echo(lab.vm_namespace("b"), "10.6.1.11", lab.vm_namespace("a"))
        try:
            echo.exchange()  # established, then in the kernel
            time.sleep(KILL_AFTER)
            old = daemons.recorded(lab.run_dir)["host-h1"]
            os.kill(old, signal.SIGKILL)
            killed_at = time.monotonic()
            echo.exchange()  # no hnv host runs on h1: the kernel carries the connection
            carried_while_down = time.monotonic() - killed_at
            new = orchestrator.start_host(lab.lab, "h1")
            status = wait_for_new_host(lab.host_state_dir("h1"), new)
            restarted_in = time.monotonic() - killed_at
            echo.exchange()  # and after the restart, through the adopted entries
            out, _ = client.communicate(timeout=SECONDS + 30)
        finally:
            echo.close()
            for process in (client, server):
                if process.poll() is None:
                    process.kill()
                process.wait()
        report = json.loads(out)
        total = report["end"]["sum"]
        lost, sent = int(total["lost_packets"]), int(total["packets"])
        rate = sent / float(total["seconds"])
        startup = status["startup"]
        assert isinstance(startup, dict)
        print(
            f"\nkill -9 of hnv host on h1: {ECHOED} bytes echoed over TCP in"
            f" {carried_while_down * 1000:.0f} ms with no process;"
            f" back in {restarted_in:.2f} s: lost {lost} of"
            f" {sent} datagrams (a gap of {lost / rate * 1000:.1f} ms at {rate:.0f}/s);"
            f" adopted {startup.get('fastpath_adopted')} kernel entries,"
            f" kept {startup.get('fastpath_kept')}"
        )
        assert sent > 0.8 * SECONDS * 1000
        assert lost <= HANDFUL
        assert carried_while_down < restarted_in  # echoed before the new process ran
        assert int(startup.get("fastpath_kept", 0)) >= 4  # both directions of UDP and TCP
