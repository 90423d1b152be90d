"""``FastPath``: the kernel fast path's programs and maps, loaded or adopted.

Life cycle, as a host switch uses it::

    fp = FastPath.open(interfaces)  # adopt what an earlier process left, else load
    fp.attach_uplink("up0"); fp.attach_uplink_socket(uplink_ring)
    fp.attach_port("vm1p");  fp.attach_port_socket(port_ring)
    fp.port_flows.set(key, entry); fp.generations.bump(slot); fp.counters.read()
    fp.close()  # the programs stay attached and keep forwarding

Loading opens the object (``openhnv/vswitch/bpf/hnv_fastpath.o``, built by ``make
bpf``), checks that its structs and counter numbers are the ones ``layout`` mirrors
(a stale object is refused, not misread), sizes the maps and loads the programs.

Adoption is how a restarted process keeps the data plane: the tc programs it left on
the interfaces are still attached and their maps still hold every entry. ``adopt``
dumps the tc filters of the given interfaces, follows each fast-path program's id to
its map ids (``bpf_prog_get_fd_by_id`` -> ``bpf_obj_get_info_by_fd`` ->
``bpf_map_get_fd_by_id``), and loads a fresh copy of the object whose maps are those
maps (``bpf_map__reuse_fd``): nothing is flushed, and re-attaching the fresh programs
replaces the old ones in place. No bpffs is needed (``ip netns exec`` remounts /sys,
so pins under /sys/fs/bpf would not be reliable here).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from openhnv.vswitch.fastpath import attach, libbpf
from openhnv.vswitch.fastpath.errors import FastPathError
from openhnv.vswitch.fastpath.layout import (
    Bucket,
    Counter,
    CStruct,
    FlowEntry,
    FlowStats,
    FlowTuple,
    GenerationRef,
    Meter,
    PortKey,
    QosBucket,
    QosKey,
    UplinkKey,
    c_layout,
)
from openhnv.vswitch.fastpath.maps import Counters, FlowTable, Generations, QosBuckets
from openhnv.vswitch.fastpath.meters import MeterTable

OBJECT_PATH = Path(__file__).resolve().parents[1] / "bpf" / "hnv_fastpath.o"
MAKE_TARGET = "make bpf"
PROGRAM_TC_PORT = "hnv_tc_port"
PROGRAM_TC_UPLINK = "hnv_tc_uplink"
PROGRAM_SOCKET_PORT = "hnv_sk_port"
PROGRAM_SOCKET_UPLINK = "hnv_sk_uplink"
PROGRAM_SOCKET_METER = "hnv_sk_meter"
PROGRAM_SOCKET_CLASSIFY = "hnv_sk_classify"
PROGRAM_XDP_PORT = "hnv_xdp_port"
TC_PROGRAMS = (PROGRAM_TC_PORT, PROGRAM_TC_UPLINK)
MAP_PORT_FLOWS = "hnv_port_flows"
MAP_UPLINK_FLOWS = "hnv_up_flows"
MAP_GENERATIONS = "hnv_port_gens"
MAP_COUNTERS = "hnv_counters"
MAP_METERS = "hnv_port_meters"
MAP_QOS = "hnv_qos_buckets"
MAPS = (MAP_PORT_FLOWS, MAP_UPLINK_FLOWS, MAP_GENERATIONS, MAP_COUNTERS, MAP_QOS)
"""The maps the tc programs use: what adoption carries over. ``hnv_port_meters`` is the
socket filters' alone (a restarted switch starts new buckets and counts)."""
DEFAULT_FLOW_CAPACITY = 262_144
DEFAULT_GENERATION_SLOTS = 65_536
MIRRORED: tuple[type[CStruct], ...] = (
    FlowTuple, PortKey, UplinkKey, GenerationRef, FlowStats, FlowEntry, Bucket, Meter,
    QosKey, QosBucket,
)  # fmt: skip
COUNTER_ENUM = "hnv_counter"


def object_path(path: Path | None = None) -> Path:
    """The object to load: ``path``, or the one built next to the C sources; a missing
    file is a ``FastPathError`` naming the make target."""
    chosen = OBJECT_PATH if path is None else path
    if not chosen.is_file():
        raise FastPathError(
            f"{chosen}: the fast-path object is not built; run `{MAKE_TARGET}` in the"
            " openhnv checkout (needs clang, libbpf-dev and bpftool)"
        )
    return chosen


@contextlib.contextmanager
def opened_object(path: Path | None = None) -> Iterator[int]:
    """The object opened (not loaded: no privilege needed) for reading its BTF."""
    chosen = object_path(path)
    bpf = libbpf.lib()
    obj = libbpf.pointer(bpf.bpf_object__open_file(str(chosen).encode(), None),
                         f"{chosen}: cannot open the object")  # fmt: skip
    try:
        yield obj
    finally:
        bpf.bpf_object__close(obj)


def layout_mismatches(obj: int) -> list[str]:
    """How the object's BTF differs from ``layout``'s mirror (empty: they agree)."""
    problems: list[str] = []
    for cls in MIRRORED:
        members = libbpf.btf_struct(obj, cls.C_NAME)
        if members[""][1] != cls.size():
            problems.append(f"sizeof(struct {cls.C_NAME}) is {members[''][1]}, not {cls.size()}")
        for place in c_layout(cls):
            found = members.get(place.name)
            if found != (place.offset, place.size):
                problems.append(f"{cls.C_NAME}.{place.name} is (offset, size) {found}, not"
                                f" {(place.offset, place.size)}")  # fmt: skip
    enum = libbpf.btf_enum(obj, COUNTER_ENUM)
    expected = {f"HNV_{c.name}": c.value for c in Counter}
    expected["HNV_COUNTER_MAX"] = len(Counter)
    if enum != expected:
        problems.append(f"enum {COUNTER_ENUM} is {enum}, not {expected}")
    return problems


class FastPath:
    """Loaded programs and their maps (see the module docstring). Build it with
    ``load``, ``adopt`` or ``open``."""

    def __init__(self, obj: int, path: Path, adopted: bool) -> None:
        self._obj = obj
        self.path = path
        self.adopted = adopted
        bpf = libbpf.lib()
        self._programs = {}
        for name in (*TC_PROGRAMS, PROGRAM_SOCKET_PORT, PROGRAM_SOCKET_UPLINK,
                     PROGRAM_SOCKET_METER, PROGRAM_SOCKET_CLASSIFY, PROGRAM_XDP_PORT):  # fmt: skip
            program = libbpf.pointer(
                bpf.bpf_object__find_program_by_name(obj, name.encode()), f"{path}: {name}"
            )
            self._programs[name] = libbpf.check(bpf.bpf_program__fd(program), f"{name}: fd")
        fds = {}
        sizes = {}
        for name in (*MAPS, MAP_METERS):
            m = libbpf.pointer(bpf.bpf_object__find_map_by_name(obj, name.encode()), name)
            fds[name] = libbpf.check(bpf.bpf_map__fd(m), f"{name}: fd")
            sizes[name] = int(bpf.bpf_map__max_entries(m))
        self.port_flows = FlowTable(MAP_PORT_FLOWS, fds[MAP_PORT_FLOWS], PortKey,
                                    sizes[MAP_PORT_FLOWS])  # fmt: skip
        self.uplink_flows = FlowTable(MAP_UPLINK_FLOWS, fds[MAP_UPLINK_FLOWS], UplinkKey,
                                      sizes[MAP_UPLINK_FLOWS])  # fmt: skip
        self.generations = Generations(fds[MAP_GENERATIONS], sizes[MAP_GENERATIONS])
        self.counters = Counters(fds[MAP_COUNTERS])
        self.meters = MeterTable(fds[MAP_METERS], sizes[MAP_METERS])
        self.qos = QosBuckets(fds[MAP_QOS])

    # ------------------------------------------------------------ construction

    @classmethod
    def load(
        cls,
        path: Path | None = None,
        *,
        flow_capacity: int = DEFAULT_FLOW_CAPACITY,
        generation_slots: int = DEFAULT_GENERATION_SLOTS,
        reuse: Mapping[str, int] | None = None,
    ) -> FastPath:
        """Load the object with new maps of ``flow_capacity`` entries (each flow map)
        and ``generation_slots`` slots, or with the maps of ``reuse`` (name -> fd;
        ``adopt`` fills it)."""
        chosen = object_path(path)
        bpf = libbpf.lib()
        libbpf.clear_messages()
        obj = libbpf.pointer(bpf.bpf_object__open_file(str(chosen).encode(), None),
                             f"{chosen}: cannot open the object")  # fmt: skip
        try:
            problems = layout_mismatches(obj)
            if problems:
                raise FastPathError(f"{chosen} does not match openhnv.vswitch.fastpath.layout"
                                    f" ({'; '.join(problems)}): run `{MAKE_TARGET}`")  # fmt: skip
            for name, size in ((MAP_PORT_FLOWS, flow_capacity), (MAP_UPLINK_FLOWS, flow_capacity),
                               (MAP_GENERATIONS, generation_slots)):  # fmt: skip
                if size < 1:
                    raise FastPathError(f"{name}: size {size!r} must be at least 1")
                m = bpf.bpf_object__find_map_by_name(obj, name.encode())
                libbpf.check(bpf.bpf_map__set_max_entries(m, size), f"{name}: resize to {size}")
            for name, fd in (reuse or {}).items():
                _reuse(obj, name, fd)
            result = bpf.bpf_object__load(obj)
            if result < 0:
                code = libbpf.errno_of(result)
                why = libbpf.recent_messages()
                raise FastPathError(
                    f"{chosen}: the kernel refused to load it: {os.strerror(code)} ({why})"
                )
            return cls(obj, chosen, adopted=bool(reuse))
        except BaseException:
            bpf.bpf_object__close(obj)
            raise

    @classmethod
    def adopt(cls, interfaces: Iterable[str], path: Path | None = None) -> FastPath | None:
        """The fast path whose programs are attached to ``interfaces`` (in this network
        namespace), with its maps and their entries; None when none is attached."""
        found: dict[str, tuple[int, int, str]] = {}  # map name -> (id, fd, where)
        try:
            for ifname in interfaces:
                for program in attach.attached_tc(ifname):
                    if program.handle == attach.TC_HANDLE and program.name in TC_PROGRAMS:
                        _maps_of(program, ifname, found)
            if not found:
                return None
            return cls.load(path, reuse={name: fd for name, (_, fd, _) in found.items()})
        finally:
            for _, fd, _ in found.values():
                os.close(fd)

    @classmethod
    def open(
        cls,
        interfaces: Iterable[str],
        path: Path | None = None,
        *,
        flow_capacity: int = DEFAULT_FLOW_CAPACITY,
        generation_slots: int = DEFAULT_GENERATION_SLOTS,
    ) -> FastPath:
        """``adopt`` the fast path attached to ``interfaces``, or ``load`` a new one."""
        adopted = cls.adopt(interfaces, path)
        if adopted is not None:
            return adopted
        return cls.load(path, flow_capacity=flow_capacity, generation_slots=generation_slots)

    def close(self) -> None:
        """Release this process's handles (idempotent). Attached programs, and the maps
        they use, stay in the kernel and keep forwarding."""
        if self._obj:
            # the fds die with the object and their numbers may be reused: no table may
            # touch them again
            handles = (self.port_flows, self.uplink_flows, self.generations, self.counters,
                       self.meters, self.qos)  # fmt: skip
            for handle in handles:
                handle.fd = -1
            libbpf.lib().bpf_object__close(self._obj)
            self._obj = 0

    def __enter__(self) -> FastPath:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ attachment

    def program_fd(self, name: str) -> int:
        """The fd of program ``name`` (one of ``TC_PROGRAMS`` or the socket filters)."""
        if not self._obj:
            raise FastPathError("the fast path is closed")
        try:
            return self._programs[name]
        except KeyError:
            raise FastPathError(f"program {name!r}: not in the fast-path object") from None

    def attach_port(self, ifname: str) -> None:
        """``hnv_tc_port`` on the tc ingress of VM port ``ifname`` (its veth host end)."""
        attach.attach_tc(ifname, self.program_fd(PROGRAM_TC_PORT), PROGRAM_TC_PORT)

    def attach_uplink(self, ifname: str) -> None:
        """``hnv_tc_uplink`` on the tc ingress of uplink ``ifname``."""
        attach.attach_tc(ifname, self.program_fd(PROGRAM_TC_UPLINK), PROGRAM_TC_UPLINK)

    def detach(self, ifname: str) -> None:
        """Take the fast path off ``ifname`` (the host kernel sees its frames again)."""
        attach.detach_tc(ifname)

    def attach_port_socket(self, sock: attach.HasFileno, what: str = "port socket") -> None:
        """The port socket filter on ``sock``, an AF_PACKET socket of a VM port."""
        attach.attach_socket(sock, self.program_fd(PROGRAM_SOCKET_PORT), what)

    def attach_meter_socket(self, sock: attach.HasFileno, what: str = "port socket") -> None:
        """The abuse limits alone (``hnv_sk_meter``) on ``sock``, an AF_PACKET socket of a
        VM port whose switch runs without the fast path."""
        attach.attach_socket(sock, self.program_fd(PROGRAM_SOCKET_METER), what)

    def attach_classify_socket(self, sock: attach.HasFileno, what: str = "port socket") -> None:
        """The port socket filter without the meter (``hnv_sk_classify``) on ``sock``, an
        AF_PACKET socket of a VM port whose veth has the XDP meter."""
        attach.attach_socket(sock, self.program_fd(PROGRAM_SOCKET_CLASSIFY), what)

    def attach_port_xdp(self, ifname: str) -> None:
        """The abuse limits (``hnv_xdp_port``) in native XDP on VM port ``ifname``."""
        attach.attach_xdp(ifname, self.program_fd(PROGRAM_XDP_PORT), PROGRAM_XDP_PORT)

    def attach_uplink_socket(self, sock: attach.HasFileno, what: str = "uplink socket") -> None:
        """The uplink socket filter on ``sock``, an AF_PACKET socket of an uplink."""
        attach.attach_socket(sock, self.program_fd(PROGRAM_SOCKET_UPLINK), what)


def _maps_of(
    program: attach.TcProgram, ifname: str, found: dict[str, tuple[int, int, str]]
) -> None:
    """Add the fast-path maps of an attached ``program`` to ``found`` (fds owned there)."""
    fd = libbpf.fd_of_id("program", program.program_id)
    try:
        _, map_ids = libbpf.prog_info(fd)
    finally:
        os.close(fd)
    for map_id in map_ids:
        map_fd = libbpf.fd_of_id("map", map_id)
        name = libbpf.map_info(map_fd).name.decode()
        known = found.get(name)
        if name not in MAPS or (known is not None and known[0] == map_id):
            os.close(map_fd)
            continue
        if known is not None:
            os.close(map_fd)
            raise FastPathError(f"{ifname}: its {program.name} uses {name} id {map_id}, but"
                                f" {known[2]}'s program uses id {known[0]}: two fast paths"
                                " are attached; detach one")  # fmt: skip
        found[name] = (map_id, map_fd, ifname)


def _reuse(obj: int, name: str, fd: int) -> None:
    """Make the object's map ``name`` the existing map ``fd`` (checked compatible)."""
    bpf = libbpf.lib()
    m = libbpf.pointer(bpf.bpf_object__find_map_by_name(obj, name.encode()), name)
    info = libbpf.map_info(fd)
    want = (bpf.bpf_map__type(m), bpf.bpf_map__key_size(m), bpf.bpf_map__value_size(m))
    have = (info.type, info.key_size, info.value_size)
    if want != have:
        raise FastPathError(f"{name}: the attached map has (type, key size, value size) {have},"
                            f" this object wants {want}; detach the old fast path")  # fmt: skip
    libbpf.check(bpf.bpf_map__reuse_fd(m, fd), f"{name}: reuse of map fd {fd}")
