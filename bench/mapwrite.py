"""Benchmark of one flow pair's kernel write: what a pairing pays in bpf(2) updates.

Loads the fast path's object (no interface attached, no namespace) and writes flow pairs
the way the offload edge does (``FlowTable.set_raw``: the VM port's entry into
``hnv_port_flows``, then the decapsulation into ``hnv_up_flows``), new keys each time:

- ``cold``: after the process slept ``--idle`` seconds (as a switch wakes for the frame
  that pairs the flow), the pair's first and second update and the pair;
- ``warm``: the same right after another pair;
- for scale, the same idle before a system call that does nothing (``getppid``) and
  before a few Python operations (``struct.pack``): what any first call costs after an
  idle period on this machine, bpf(2) or not.

Figures are medians over ``--pairs`` pairs, in microseconds. Prints one JSON object;
``--smoke`` writes a few pairs. Without the object or the privilege to load it, the JSON
says why (``skipped``).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import statistics
import struct
import time
from collections.abc import Callable, Sequence

from openhnv.vswitch.fastpath.errors import FastPathError
from openhnv.vswitch.fastpath.fastpath import FastPath
from openhnv.vswitch.fastpath.layout import FlowEntry, PortKey, UplinkKey

IDLE_S = 0.01
"""The default idle period before a cold write (``--idle``)."""
CAPACITY = 65_536
_INDEX = struct.Struct("=I")
_NS_PER_US = 1000.0


def _key(index: int, size: int) -> bytes:
    return _INDEX.pack(index) + bytes(size - _INDEX.size)


def _median_us(samples: list[int]) -> float:
    return round(statistics.median(samples) / _NS_PER_US, 1)


def _timed_after_idle(call: Callable[[], object], count: int, idle: float) -> float:
    ns = time.perf_counter_ns
    samples = []
    for _ in range(count):
        time.sleep(idle)
        start = ns()
        call()
        samples.append(ns() - start)
    return _median_us(samples)


def measure(fp: FastPath, pairs: int, idle: float = IDLE_S) -> dict[str, float]:
    entry = bytes(FlowEntry.size())
    port_size, uplink_size = PortKey.size(), UplinkKey.size()
    ns = time.perf_counter_ns
    samples: dict[str, list[int]] = {}
    index = 0
    for round_ in range(2 * pairs):
        warm = round_ % 2 == 1
        if not warm:
            time.sleep(idle)
        port_key, uplink_key = _key(index, port_size), _key(index, uplink_size)
        index += 1
        start = ns()
        fp.port_flows.set_raw(port_key, entry)
        middle = ns()
        fp.uplink_flows.set_raw(uplink_key, entry)
        end = ns()
        kind = "warm" if warm else "cold"
        samples.setdefault(f"{kind}_first_update_us", []).append(middle - start)
        samples.setdefault(f"{kind}_second_update_us", []).append(end - middle)
        samples.setdefault(f"{kind}_pair_us", []).append(end - start)
    figures = {name: _median_us(values) for name, values in sorted(samples.items())}
    libc = ctypes.CDLL(None)
    figures["cold_getppid_us"] = _timed_after_idle(libc.getppid, pairs, idle)
    figures["cold_struct_pack_us"] = _timed_after_idle(lambda: _INDEX.pack(index), pairs, idle)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few pairs")
    parser.add_argument("--pairs", type=int, default=200, help="pairs written cold and warm")
    parser.add_argument(
        "--idle", type=float, default=IDLE_S, help="seconds idle before a cold pair"
    )
    args = parser.parse_args(argv)
    pairs = 5 if args.smoke else args.pairs
    try:
        fp = FastPath.load(flow_capacity=CAPACITY, generation_slots=1)
    except FastPathError as exc:
        print(json.dumps({"skipped": str(exc)}, indent=2))
        return 0
    gc.disable()  # a collection inside one timed call is not what is measured
    try:
        figures = measure(fp, pairs, args.idle)
    finally:
        gc.enable()
        fp.close()
    print(json.dumps({"pairs": pairs, "idle_s": args.idle, **figures}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
