"""Keep the host's own IP stack away from frames that belong to the switch.

The host kernel holds no PA and no CA, yet every frame arriving on an uplink for the
uplink's MAC is also handed to its IP stack, which looks up a route, fails and drops
it (``ip_rcv`` -> ``ip_route_input_slow`` -> ``ip_error``): about a tenth of the CPU a
frame costs here. A tc ingress program that drops everything stops that. AF_PACKET
sockets see a frame before tc ingress runs, so the switch still gets every frame, and
so does tcpdump.

The program is two eBPF instructions of type ``BPF_PROG_TYPE_SCHED_CLS``, loaded once
per process with bpf(2) and attached in direct-action mode under a ``clsact`` qdisc
through pyroute2::

    r0 = TC_ACT_SHOT (2)
    exit

``hide_from_kernel(ifname)`` attaches it in the calling thread's network namespace;
``show_to_kernel(ifname)`` removes the ``clsact`` qdisc again.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import threading

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from openhnv.vswitch.errors import DeviceError

SYS_BPF = 321  # x86_64
BPF_PROG_LOAD = 5
BPF_PROG_TYPE_SCHED_CLS = 3
TC_ACT_SHOT = 2
TC_INGRESS_PARENT = "ffff:fff2"
PROGRAM_NAME = "hnv_kernel_drop"
# BPF_ALU64 | BPF_MOV | BPF_K, dst r0, imm TC_ACT_SHOT; BPF_JMP | BPF_EXIT
_INSNS = struct.pack("<BBhi", 0xB7, 0, 0, TC_ACT_SHOT) + struct.pack("<BBhi", 0x95, 0, 0, 0)
# union bpf_attr, BPF_PROG_LOAD part: prog_type, insn_cnt, insns, license, log_level,
# log_size, log_buf, kern_version, prog_flags, prog_name
_PROG_LOAD = struct.Struct("=IIQQIIQII16s")
_ATTR_SIZE = 128
_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.syscall.restype = ctypes.c_long

_lock = threading.Lock()
_program_fd = -1


def drop_program() -> int:
    """The file descriptor of the drop program, loaded on first use."""
    global _program_fd
    with _lock:
        if _program_fd >= 0:
            return _program_fd
        insns = ctypes.create_string_buffer(_INSNS, len(_INSNS))
        license_text = ctypes.create_string_buffer(b"GPL")
        attr = _PROG_LOAD.pack(
            BPF_PROG_TYPE_SCHED_CLS, len(_INSNS) // 8, ctypes.addressof(insns),
            ctypes.addressof(license_text), 0, 0, 0, 0, 0, PROGRAM_NAME.encode(),
        )  # fmt: skip
        buffer = ctypes.create_string_buffer(attr, _ATTR_SIZE)
        fd = int(_LIBC.syscall(SYS_BPF, BPF_PROG_LOAD, buffer, _ATTR_SIZE))
        if fd < 0:
            code = ctypes.get_errno()
            raise DeviceError(f"bpf(BPF_PROG_LOAD) of {PROGRAM_NAME}: {os.strerror(code)}")
        _program_fd = fd
        return fd


def hide_from_kernel(ifname: str) -> None:
    """Drop every frame of ``ifname`` at tc ingress (after AF_PACKET has seen it)."""
    fd = drop_program()
    try:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=ifname)
            if not found:
                raise DeviceError(f"{ifname}: no such interface")
            index = found[0]
            try:
                ipr.tc("add", "clsact", index=index)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise
            ipr.tc("replace-filter", "bpf", index=index, handle=":1", fd=fd, name=PROGRAM_NAME,
                   parent=TC_INGRESS_PARENT, classid=1, direct_action=True)  # fmt: skip
    except NetlinkError as exc:
        raise DeviceError(f"{ifname}: cannot attach {PROGRAM_NAME}: {exc}") from exc


def show_to_kernel(ifname: str) -> None:
    """Remove the ``clsact`` qdisc (and the drop program) of ``ifname``; no error if the
    interface or the qdisc is gone."""
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            return
        try:
            ipr.tc("del", "clsact", index=found[0])
        except NetlinkError as exc:
            if exc.code not in (errno.ENOENT, errno.EINVAL, errno.ENODEV):
                raise DeviceError(f"{ifname}: cannot remove clsact: {exc}") from exc
