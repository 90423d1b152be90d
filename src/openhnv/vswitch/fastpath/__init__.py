"""The kernel fast path: eBPF programs that execute the VFP engine's unified flows.

The engine (Python) stays the only place that decides; it installs each decided flow
as an exact entry and the kernel executes it until the entry is deleted or one of
its generations moves on. Modules:

- ``layout``: the map keys and values, mirrored once each from ``../bpf/hnv.h``;
- ``entries``: building entries (encapsulate, deliver, decapsulate + deliver) from
  the slow path's outer-header template, and the kernel's keys of a frame;
- ``libbpf``: libbpf through ctypes (object, programs, maps, ids, BTF);
- ``attach``: tc ingress attachment (pyroute2), the tc filter dump that finds
  programs left attached by an earlier process, socket filters;
- ``fastpath``: ``FastPath``, the loaded (or adopted) programs and maps;
- ``probe``: ``probe()``, one line on why the fast path cannot run here.

The C sources and the built object are in ``openhnv/vswitch/bpf`` (``make bpf``).
"""
