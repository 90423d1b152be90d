"""Where the fast-path programs hang: tc ingress of interfaces, and sockets.

- ``attach_tc(ifname, fd, name)`` puts a program on the ingress of ``ifname`` in
  direct-action mode under a ``clsact`` qdisc (pyroute2), with the same handle and
  priority as ``vswitch.ingress``'s drop program: attaching replaces that program
  (or an earlier fast-path program) in one step, so there is never a moment
  without one. ``detach_tc`` removes the filter again.
- ``attached_tc(ifname)`` reads back which program is attached there (its id and
  name): pyroute2 0.9 does not decode ``TCA_BPF_ID``, so this is one rtnetlink
  ``RTM_GETTFILTER`` dump parsed here. A restarted process finds its maps this way.
- ``attach_socket(sock, fd)``: ``SO_ATTACH_BPF`` on an AF_PACKET socket.
- ``attach_xdp(ifname, fd, name)`` / ``detach_xdp(ifname)`` / ``attached_xdp(ifname)``:
  a program in native (driver) XDP mode on an interface (libbpf's ``bpf_xdp_*``, which
  speak rtnetlink); native only: generic XDP would run after the skb is built, which is
  what the early drop is there to avoid.

Everything works in the calling thread's network namespace.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
from dataclasses import dataclass
from typing import Protocol

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from openhnv.vswitch.fastpath import libbpf
from openhnv.vswitch.fastpath.errors import FastPathError

TC_INGRESS_PARENT = 0xFFFFFFF2  # clsact ingress, "ffff:fff2"
TC_HANDLE = 1  # ":1", as vswitch.ingress
TC_PRIORITY = 0xC000  # the priority the kernel gives vswitch.ingress's filter
XDP_FLAGS_DRV_MODE = 1 << 2  # linux/if_link.h: native XDP, in the driver
SO_ATTACH_BPF = 50
SO_DETACH_BPF = 27
_RTM_NEWTFILTER = 44
_RTM_GETTFILTER = 46
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_NLM_F_REQUEST = 0x1
_NLM_F_DUMP = 0x300
_TCA_KIND = 1
_TCA_OPTIONS = 2
_TCA_BPF_NAME = 7
_TCA_BPF_ID = 11
_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_TCMSG = struct.Struct("=BxxxiIII")  # family, ifindex, handle, parent, info
_RTATTR = struct.Struct("=HH")  # len, type
_NLMSGERR = struct.Struct("=i")
_RECV_BUFFER = 65536


class HasFileno(Protocol):
    def fileno(self) -> int: ...


@dataclass(frozen=True, slots=True)
class TcProgram:
    """A bpf filter found on an interface's tc ingress."""

    handle: int
    priority: int
    program_id: int
    name: str


def _index(ipr: IPRoute, ifname: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise FastPathError(f"{ifname}: no such interface")
    return int(found[0])


def attach_tc(ifname: str, fd: int, name: str) -> None:
    """Program ``fd`` on the tc ingress of ``ifname`` (replacing what is there)."""
    try:
        with IPRoute() as ipr:
            index = _index(ipr, ifname)
            try:
                ipr.tc("add", "clsact", index=index)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise
            ipr.tc("replace-filter", "bpf", index=index, handle=TC_HANDLE, fd=fd, name=name,
                   parent=TC_INGRESS_PARENT, prio=TC_PRIORITY, classid=1,
                   direct_action=True)  # fmt: skip
    except NetlinkError as exc:
        raise FastPathError(f"{ifname}: cannot attach {name} at tc ingress: {exc}") from exc


def detach_tc(ifname: str) -> None:
    """Remove the fast path's filter from ``ifname``; no error if it or the interface is
    gone."""
    try:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=ifname)
            if not found:
                return
            ipr.tc("del-filter", "bpf", index=found[0], handle=TC_HANDLE,
                   parent=TC_INGRESS_PARENT, prio=TC_PRIORITY)  # fmt: skip
    except NetlinkError as exc:
        if exc.code not in (errno.ENOENT, errno.EINVAL, errno.ENODEV):
            raise FastPathError(f"{ifname}: cannot detach the fast path: {exc}") from exc


def attached_tc(ifname: str) -> list[TcProgram]:
    """The bpf programs on the tc ingress of ``ifname`` (none: [])."""
    try:
        index = socket.if_nametoindex(ifname)
    except OSError:
        raise FastPathError(f"{ifname}: no such interface") from None
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        request = _TCMSG.pack(socket.AF_UNSPEC, index, 0, TC_INGRESS_PARENT, 0)
        sequence = int.from_bytes(os.urandom(4), "little")
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(request), _RTM_GETTFILTER,
                                _NLM_F_REQUEST | _NLM_F_DUMP, sequence, 0)  # fmt: skip
        sock.sendall(header + request)
        found: list[TcProgram] = []
        done = False
        while not done:
            programs, done = parse_tc_dump(sock.recv(_RECV_BUFFER), sequence, ifname)
            found += programs
        return found


def parse_tc_dump(data: bytes, sequence: int, ifname: str) -> tuple[list[TcProgram], bool]:
    """The bpf filters in one buffer of an ``RTM_GETTFILTER`` dump answer (messages of
    other sequence numbers are skipped), and whether the dump ended in it. An
    interface without a clsact qdisc ends the dump with no filter."""
    found: list[TcProgram] = []
    at = 0
    while at + _NLMSGHDR.size <= len(data):
        length, kind, _flags, seq, _pid = _NLMSGHDR.unpack_from(data, at)
        if length < _NLMSGHDR.size:
            break
        body = data[at + _NLMSGHDR.size : at + length]
        at += (length + 3) & ~3
        if seq != sequence:
            continue
        if kind == _NLMSG_DONE:
            return found, True
        if kind == _NLMSG_ERROR:
            code = -_NLMSGERR.unpack_from(body)[0]
            if code in (errno.EINVAL, errno.ENOENT):  # no clsact qdisc: no filter
                return found, True
            raise FastPathError(f"{ifname}: tc filter dump: {os.strerror(code)}")
        if kind == _RTM_NEWTFILTER:
            program = _program(body)
            if program is not None:
                found.append(program)
    return found, False


def _attributes(data: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    at = 0
    while at + _RTATTR.size <= len(data):
        length, kind = _RTATTR.unpack_from(data, at)
        if length < _RTATTR.size:
            break
        out[kind & 0x3FFF] = data[at + _RTATTR.size : at + length]  # without NLA_F_NESTED
        at += (length + 3) & ~3
    return out


def _program(body: bytes) -> TcProgram | None:
    _family, _index, handle, _parent, info = _TCMSG.unpack_from(body)
    attrs = _attributes(body[_TCMSG.size :])
    if attrs.get(_TCA_KIND, b"").rstrip(b"\0") != b"bpf" or _TCA_OPTIONS not in attrs:
        return None
    options = _attributes(attrs[_TCA_OPTIONS])
    if _TCA_BPF_ID not in options:
        return None
    program_id = int.from_bytes(options[_TCA_BPF_ID][:4], "little")
    name = options.get(_TCA_BPF_NAME, b"").rstrip(b"\0").decode(errors="replace")
    return TcProgram(handle, info >> 16, program_id, name)


def attach_socket(sock: HasFileno, fd: int, what: str) -> None:
    """``SO_ATTACH_BPF`` program ``fd`` to ``sock`` (``what`` names it in errors)."""
    try:
        _setsockopt(sock, SO_ATTACH_BPF, fd)
    except OSError as exc:
        raise FastPathError(f"{what}: cannot attach the socket filter: {exc}") from exc


def detach_socket(sock: HasFileno) -> None:
    """Remove a socket's filter (no error when it has none)."""
    try:
        _setsockopt(sock, SO_DETACH_BPF, 0)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise FastPathError(f"socket {sock.fileno()}: cannot detach its filter: {exc}") from exc


def _setsockopt(sock: HasFileno, option: int, value: int) -> None:
    # a socket object of our own around the caller's fd, never closing it
    s = socket.socket(fileno=os.dup(sock.fileno()))
    try:
        s.setsockopt(socket.SOL_SOCKET, option, value)
    finally:
        s.close()


def _ifindex(ifname: str) -> int:
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        raise FastPathError(f"{ifname}: no such interface") from None


def attach_xdp(ifname: str, fd: int, name: str) -> None:
    """Program ``fd`` in native XDP mode on ``ifname`` (replacing what is there)."""
    result = libbpf.lib().bpf_xdp_attach(_ifindex(ifname), fd, XDP_FLAGS_DRV_MODE, None)
    if result < 0:
        code = libbpf.errno_of(result)
        raise FastPathError(f"{ifname}: cannot attach {name} in native XDP mode:"
                            f" {os.strerror(code)} (errno {code})")  # fmt: skip


def detach_xdp(ifname: str) -> bool:
    """Remove the native XDP program of ``ifname``; whether the interface still exists
    (no error if it or the program is gone)."""
    try:
        index = socket.if_nametoindex(ifname)
    except OSError:
        return False
    result = libbpf.lib().bpf_xdp_detach(index, XDP_FLAGS_DRV_MODE, None)
    if result < 0 and libbpf.errno_of(result) not in (errno.ENOENT, errno.ENODEV):
        code = libbpf.errno_of(result)
        raise FastPathError(f"{ifname}: cannot detach its XDP program: {os.strerror(code)}")
    return True


def attached_xdp(ifname: str) -> int:
    """The id of the native XDP program on ``ifname`` (0: none)."""
    program_id = ctypes.c_uint32(0)
    libbpf.check(libbpf.lib().bpf_xdp_query_id(_ifindex(ifname), XDP_FLAGS_DRV_MODE,
                                               ctypes.byref(program_id)),
                 f"{ifname}: XDP query")  # fmt: skip
    return int(program_id.value)
