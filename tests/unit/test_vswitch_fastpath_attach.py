"""Reading the tc filter dump: which fast-path program an interface carries.

Known-answer rtnetlink messages, one field per line, as the kernel sends them for
``tc filter show dev IF ingress`` on a bpf filter in direct-action mode.
"""

from __future__ import annotations

import errno
import struct

import pytest

from openhnv.vswitch.fastpath.attach import (
    TC_HANDLE,
    TC_INGRESS_PARENT,
    TC_PRIORITY,
    TcProgram,
    parse_tc_dump,
)
from openhnv.vswitch.fastpath.errors import FastPathError

SEQ = 0x1234


def _attr(kind: int, value: bytes) -> bytes:
    length = 4 + len(value)
    return struct.pack("=HH", length, kind) + value + b"\0" * (-length % 4)


def _message(kind: int, body: bytes, seq: int = SEQ) -> bytes:
    length = 16 + len(body)
    return struct.pack("=IHHII", length, kind, 2, seq, 0) + body + b"\0" * (-length % 4)


def _filter(program_id: int, name: str, kind: bytes = b"bpf\0") -> bytes:
    tcmsg = struct.pack(
        "=BxxxiIII",
        0,  # family AF_UNSPEC
        3,  # ifindex
        TC_HANDLE,  # handle :1
        TC_INGRESS_PARENT,  # parent ffff:fff2
        TC_PRIORITY << 16 | 0x0003,  # info: priority, protocol ETH_P_ALL (host order)
    )
    options = (
        _attr(1, (1).to_bytes(4, "little"))  # TCA_BPF_CLASSID
        + _attr(7, name.encode() + b"\0")  # TCA_BPF_NAME
        + _attr(11, program_id.to_bytes(4, "little"))  # TCA_BPF_ID
        + _attr(10, bytes(8))  # TCA_BPF_TAG
        + _attr(8, (1).to_bytes(4, "little"))  # TCA_BPF_FLAGS: direct action
    )
    return tcmsg + _attr(1, kind) + _attr(2 | 0x8000, options)  # TCA_KIND, nested TCA_OPTIONS


def test_a_bpf_filter_is_read_with_its_program_id() -> None:
    data = _message(44, _filter(123, "hnv_tc_port")) + _message(3, b"\0\0\0\0")
    assert parse_tc_dump(data, SEQ, "vm1") == (
        [TcProgram(TC_HANDLE, TC_PRIORITY, 123, "hnv_tc_port")],
        True,
    )


def test_the_dump_may_span_buffers_and_skips_other_answers() -> None:
    first = _message(44, _filter(5, "a"), seq=SEQ + 1) + _message(44, _filter(6, "b"))
    assert parse_tc_dump(first, SEQ, "vm1") == ([TcProgram(TC_HANDLE, TC_PRIORITY, 6, "b")], False)
    assert parse_tc_dump(_message(3, b"\0\0\0\0"), SEQ, "vm1") == ([], True)


def test_a_filter_of_another_kind_is_not_a_program() -> None:
    data = _message(44, _filter(7, "x", kind=b"u32\0")) + _message(3, b"\0\0\0\0")
    assert parse_tc_dump(data, SEQ, "vm1") == ([], True)


def test_no_clsact_means_no_program_and_other_errors_name_the_interface() -> None:
    no_qdisc = _message(2, struct.pack("=i", -errno.EINVAL) + bytes(16))
    assert parse_tc_dump(no_qdisc, SEQ, "vm1") == ([], True)
    denied = _message(2, struct.pack("=i", -errno.EPERM) + bytes(16))
    with pytest.raises(FastPathError, match="vm1"):
        parse_tc_dump(denied, SEQ, "vm1")
