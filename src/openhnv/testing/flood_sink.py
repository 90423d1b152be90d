"""A sink for a flood that must never reach a host: the control of ``bench/abuse.py``.

``FloodSink(tag)`` (a context manager) makes a namespace ``hnv-<tag>…-sink`` holding a
veth pair, ``sk0`` and ``sk1``, both up; ``sk1`` has a native XDP program that drops
every frame (``XDP_DROP``, two eBPF instructions loaded with libbpf's
``bpf_prog_load``). A flood generator started on ``sk0`` (``openhnv.testing.flood``
with ``namespace`` and ``interface`` from here) then does all its own work, and the
frames cross a veth to its peer's XDP hook exactly as they cross a VM port's veth to
the host end's, and there they end: no host, no switch, no other VM sees them. On exit
the namespace goes, and with it the veth and the program.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct

from openhnv.lab import netns
from openhnv.testing.namespaces import VM_MTU, namespaces
from openhnv.vswitch.fastpath import attach, libbpf

SENDER = "sk0"
DROPPER = "sk1"
BPF_PROG_TYPE_XDP = 6
XDP_DROP = 1
PROGRAM_NAME = "hnv_sink_drop"
# BPF_ALU64 | BPF_MOV | BPF_K: r0 = XDP_DROP; BPF_JMP | BPF_EXIT
_INSNS = struct.pack("<BBhi", 0xB7, 0, 0, XDP_DROP) + struct.pack("<BBhi", 0x95, 0, 0, 0)
_INSN_SIZE = 8


def drop_program() -> int:
    """A new fd of an XDP program that drops every frame."""
    bpf = libbpf.lib()
    load = bpf.bpf_prog_load
    load.restype = ctypes.c_int
    load.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p,
                     ctypes.c_size_t, ctypes.c_void_p]  # fmt: skip
    insns = ctypes.create_string_buffer(_INSNS, len(_INSNS))
    fd = load(BPF_PROG_TYPE_XDP, PROGRAM_NAME.encode(), b"GPL", insns,
              len(_INSNS) // _INSN_SIZE, None)  # fmt: skip
    return libbpf.check(fd, f"bpf_prog_load of {PROGRAM_NAME}")


class FloodSink:
    """The sink namespace and its veth (see the module docstring)."""

    def __init__(self, tag: str = "fs") -> None:
        self.tag = tag
        self.namespace = ""
        self.interface = SENDER
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> FloodSink:
        try:
            (self.namespace,) = self._stack.enter_context(namespaces(self.tag, "sink"))
            netns.add_veth(self.namespace, SENDER, self.namespace, DROPPER, VM_MTU)
            for ifname in (SENDER, DROPPER):
                netns.set_up(self.namespace, ifname)
            fd = drop_program()
            try:
                netns.run_in(self.namespace, attach.attach_xdp, DROPPER, fd, PROGRAM_NAME)
            finally:
                os.close(fd)  # the attachment holds the program
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
