"""libbpf (Debian ``libbpf1``) through ctypes: objects, programs, maps, ids and BTF.

Why libbpf and not the bare bpf(2) plumbing of ``vswitch.ingress``: a clang-built
object needs its ELF sections, BTF-defined maps and map relocations resolved before
the kernel will load it; libbpf does that, is a small runtime library of Debian
(``libbpf1``) and keeps the same C ABI across 1.x, so ctypes reaches it without a
compiled extension. Only the stable ``LIBBPF_API`` functions of libbpf 1.1 are used.
In libbpf 1.x every function reports failure as a negative errno (int results) or
NULL with ``errno`` set (pointer results); ``_check``/``_pointer`` turn both into
``FastPathError`` naming what failed.

libbpf's own messages (the verifier log among them) go to the ``logging`` module at
debug level; the last lines are kept and quoted when a load fails.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from openhnv.vswitch.fastpath.errors import FastPathError

LIBBPF_SONAME = "libbpf.so.1"
BPF_OBJ_NAME_LEN = 16
BTF_KIND_STRUCT = 4
BTF_KIND_ENUM = 6
_LOG_LINES = 40
_PRINT_BUFFER = 4096

log = logging.getLogger(__name__)

_c_void_p = ctypes.c_void_p
_c_int = ctypes.c_int
_c_uint = ctypes.c_uint32
_c_char_p = ctypes.c_char_p
_PRINT_FN = ctypes.CFUNCTYPE(_c_int, _c_int, _c_char_p, _c_void_p)


class BpfProgInfo(ctypes.Structure):
    """The head of ``struct bpf_prog_info`` (linux/bpf.h); the kernel fills a prefix."""

    _fields_ = [
        ("type", _c_uint),
        ("id", _c_uint),
        ("tag", ctypes.c_uint8 * 8),
        ("jited_prog_len", _c_uint),
        ("xlated_prog_len", _c_uint),
        ("jited_prog_insns", ctypes.c_uint64),
        ("xlated_prog_insns", ctypes.c_uint64),
        ("load_time", ctypes.c_uint64),
        ("created_by_uid", _c_uint),
        ("nr_map_ids", _c_uint),
        ("map_ids", ctypes.c_uint64),
        ("name", ctypes.c_char * BPF_OBJ_NAME_LEN),
    ]


class BpfMapInfo(ctypes.Structure):
    """The head of ``struct bpf_map_info`` (linux/bpf.h)."""

    _fields_ = [
        ("type", _c_uint),
        ("id", _c_uint),
        ("key_size", _c_uint),
        ("value_size", _c_uint),
        ("max_entries", _c_uint),
        ("map_flags", _c_uint),
        ("name", ctypes.c_char * BPF_OBJ_NAME_LEN),
    ]


class BpfMapBatchOpts(ctypes.Structure):
    """``struct bpf_map_batch_opts`` (bpf/bpf.h)."""

    _fields_ = [("sz", ctypes.c_size_t), ("elem_flags", ctypes.c_uint64),
                ("flags", ctypes.c_uint64)]  # fmt: skip


class BtfType(ctypes.Structure):
    """``struct btf_type`` (linux/btf.h): name, kind/vlen in ``info``, size or type."""

    _fields_ = [("name_off", _c_uint), ("info", _c_uint), ("size_or_type", _c_uint)]


class BtfMember(ctypes.Structure):
    """``struct btf_member``: follows a struct's ``btf_type``, ``vlen`` of them."""

    _fields_ = [("name_off", _c_uint), ("type", _c_uint), ("offset", _c_uint)]


class BtfEnum(ctypes.Structure):
    """``struct btf_enum``: follows an enum's ``btf_type``."""

    _fields_ = [("name_off", _c_uint), ("val", ctypes.c_int32)]


# name: (restype, argtypes)
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "libbpf_set_print": (_c_void_p, [_PRINT_FN]),
    "libbpf_num_possible_cpus": (_c_int, []),
    "bpf_object__open_file": (_c_void_p, [_c_char_p, _c_void_p]),
    "bpf_object__load": (_c_int, [_c_void_p]),
    "bpf_object__close": (None, [_c_void_p]),
    "bpf_object__btf": (_c_void_p, [_c_void_p]),
    "bpf_object__find_program_by_name": (_c_void_p, [_c_void_p, _c_char_p]),
    "bpf_object__find_map_by_name": (_c_void_p, [_c_void_p, _c_char_p]),
    "bpf_program__fd": (_c_int, [_c_void_p]),
    "bpf_map__fd": (_c_int, [_c_void_p]),
    "bpf_map__reuse_fd": (_c_int, [_c_void_p, _c_int]),
    "bpf_map__set_max_entries": (_c_int, [_c_void_p, _c_uint]),
    "bpf_map__max_entries": (_c_uint, [_c_void_p]),
    "bpf_map__key_size": (_c_uint, [_c_void_p]),
    "bpf_map__value_size": (_c_uint, [_c_void_p]),
    "bpf_map__type": (_c_int, [_c_void_p]),
    "bpf_map_update_elem": (_c_int, [_c_int, _c_void_p, _c_void_p, ctypes.c_uint64]),
    "bpf_map_lookup_elem": (_c_int, [_c_int, _c_void_p, _c_void_p]),
    "bpf_map_delete_elem": (_c_int, [_c_int, _c_void_p]),
    "bpf_map_get_next_key": (_c_int, [_c_int, _c_void_p, _c_void_p]),
    "bpf_map_lookup_batch": (
        _c_int,
        [_c_int, _c_void_p, _c_void_p, _c_void_p, _c_void_p, ctypes.POINTER(_c_uint), _c_void_p],
    ),
    "bpf_prog_get_fd_by_id": (_c_int, [_c_uint]),
    "bpf_map_get_fd_by_id": (_c_int, [_c_uint]),
    "bpf_obj_get_info_by_fd": (_c_int, [_c_int, _c_void_p, ctypes.POINTER(_c_uint)]),
    "bpf_xdp_attach": (_c_int, [_c_int, _c_int, _c_uint, _c_void_p]),
    "bpf_xdp_detach": (_c_int, [_c_int, _c_uint, _c_void_p]),
    "bpf_xdp_query_id": (_c_int, [_c_int, _c_int, ctypes.POINTER(_c_uint)]),
    "btf__find_by_name_kind": (ctypes.c_int32, [_c_void_p, _c_char_p, _c_uint]),
    "btf__type_by_id": (_c_void_p, [_c_void_p, _c_uint]),
    "btf__name_by_offset": (_c_char_p, [_c_void_p, _c_uint]),
    "btf__resolve_size": (ctypes.c_int64, [_c_void_p, _c_uint]),
}

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_messages: collections.deque[str] = collections.deque(maxlen=_LOG_LINES)
_libc = ctypes.CDLL(None, use_errno=True)
_libc.vsnprintf.argtypes = [_c_char_p, ctypes.c_size_t, _c_char_p, _c_void_p]
_libc.vsnprintf.restype = _c_int


def _on_print(level: int, fmt: bytes | None, args: int | None) -> int:
    """libbpf's print callback: format with vsnprintf (the va_list passes through)."""
    buffer = ctypes.create_string_buffer(_PRINT_BUFFER)
    _libc.vsnprintf(buffer, _PRINT_BUFFER, fmt, args)
    text = buffer.value.decode(errors="replace").rstrip()
    if text:
        _messages.append(text)
        log.debug("libbpf: %s", text)
    return 0


_print_callback = _PRINT_FN(_on_print)  # kept alive for as long as libbpf may call it


def lib() -> ctypes.CDLL:
    """libbpf, loaded and typed on first use (``FastPathError`` when not installed)."""
    global _lib
    with _lock:
        if _lib is None:
            try:
                loaded = ctypes.CDLL(LIBBPF_SONAME, use_errno=True)
            except OSError as exc:
                raise FastPathError(
                    f"{LIBBPF_SONAME}: cannot load libbpf ({exc}); install Debian libbpf1"
                ) from None
            for name, (restype, argtypes) in _SIGNATURES.items():
                function = getattr(loaded, name)
                function.restype = restype
                function.argtypes = argtypes
            loaded.libbpf_set_print(_print_callback)
            _lib = loaded
        return _lib


def recent_messages(lines: int = 8) -> str:
    """The last ``lines`` messages libbpf printed, joined (for error messages)."""
    return " | ".join(list(_messages)[-lines:])


def clear_messages() -> None:
    _messages.clear()


def check(result: int, what: str) -> int:
    """``result`` when >= 0, else ``FastPathError`` naming ``what`` and the errno."""
    if result < 0:
        code = -result
        raise FastPathError(f"{what}: {os.strerror(code)} (errno {code})")
    return result


def pointer(result: int | None, what: str) -> int:
    """A non-NULL pointer, else ``FastPathError`` naming ``what`` and errno."""
    if not result:
        code = ctypes.get_errno() or 1
        raise FastPathError(f"{what}: {os.strerror(code)} (errno {code})")
    return result


def errno_of(result: int) -> int:
    """The errno of a libbpf int result (0 on success)."""
    return -result if result < 0 else 0


def possible_cpus() -> int:
    return check(lib().libbpf_num_possible_cpus(), "libbpf_num_possible_cpus")


def prog_info(fd: int) -> tuple[str, list[int]]:
    """(name, map ids) of the program behind ``fd``."""
    bpf = lib()
    info = BpfProgInfo()
    size = _c_uint(ctypes.sizeof(info))
    check(bpf.bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size)),
          f"program fd {fd}: bpf_obj_get_info_by_fd")  # fmt: skip
    count = info.nr_map_ids
    ids = (_c_uint * max(count, 1))()
    info = BpfProgInfo(nr_map_ids=count, map_ids=ctypes.addressof(ids))
    size = _c_uint(ctypes.sizeof(info))
    check(bpf.bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size)),
          f"program fd {fd}: bpf_obj_get_info_by_fd (map ids)")  # fmt: skip
    return info.name.decode(), list(ids[: min(count, info.nr_map_ids)])


def map_info(fd: int) -> BpfMapInfo:
    info = BpfMapInfo()
    size = _c_uint(ctypes.sizeof(info))
    check(lib().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size)),
          f"map fd {fd}: bpf_obj_get_info_by_fd")  # fmt: skip
    return info


def fd_of_id(kind: str, object_id: int) -> int:
    """A new fd for the program (``kind`` "program") or map with ``object_id``."""
    bpf = lib()
    get: Callable[[int], int] = (
        bpf.bpf_prog_get_fd_by_id if kind == "program" else bpf.bpf_map_get_fd_by_id
    )
    return check(get(object_id), f"{kind} id {object_id}: get fd by id")


def btf_struct(obj: int, name: str) -> dict[str, tuple[int, int]]:
    """member -> (offset, size) in bytes of ``struct name`` in the object's BTF."""
    bpf = lib()
    btf = pointer(bpf.bpf_object__btf(obj), "the object has no BTF")
    type_id = bpf.btf__find_by_name_kind(btf, name.encode(), BTF_KIND_STRUCT)
    if type_id < 0:
        raise FastPathError(f"BTF: no struct {name} in the object")
    t = BtfType.from_address(pointer(bpf.btf__type_by_id(btf, type_id), f"BTF struct {name}"))
    base = ctypes.addressof(t) + ctypes.sizeof(BtfType)
    members: dict[str, tuple[int, int]] = {}
    for i in range(t.info & 0xFFFF):
        m = BtfMember.from_address(base + i * ctypes.sizeof(BtfMember))
        member = (bpf.btf__name_by_offset(btf, m.name_off) or b"").decode()
        size = check(bpf.btf__resolve_size(btf, m.type), f"BTF size of {name}.{member}")
        members[member] = (m.offset // 8, size)  # no bitfields: offset is in bits
    members[""] = (0, t.size_or_type)  # the struct's own size
    return members


def btf_enum(obj: int, name: str) -> dict[str, int]:
    """enumerator -> value of ``enum name`` in the object's BTF."""
    bpf = lib()
    btf = pointer(bpf.bpf_object__btf(obj), "the object has no BTF")
    type_id = bpf.btf__find_by_name_kind(btf, name.encode(), BTF_KIND_ENUM)
    if type_id < 0:
        raise FastPathError(f"BTF: no enum {name} in the object")
    t = BtfType.from_address(pointer(bpf.btf__type_by_id(btf, type_id), f"BTF enum {name}"))
    base = ctypes.addressof(t) + ctypes.sizeof(BtfType)
    values: dict[str, int] = {}
    for i in range(t.info & 0xFFFF):
        e = BtfEnum.from_address(base + i * ctypes.sizeof(BtfEnum))
        values[(bpf.btf__name_by_offset(btf, e.name_off) or b"").decode()] = e.val
    return values
