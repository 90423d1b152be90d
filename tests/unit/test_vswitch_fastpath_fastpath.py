"""What the loader says when it cannot load, and what ``probe`` says (no root needed)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from openhnv.vswitch.errors import VSwitchError
from openhnv.vswitch.fastpath import libbpf
from openhnv.vswitch.fastpath.errors import FastPathError
from openhnv.vswitch.fastpath.fastpath import (
    MAKE_TARGET,
    OBJECT_PATH,
    PROGRAM_SOCKET_CLASSIFY,
    PROGRAM_XDP_PORT,
    FastPath,
    object_path,
    opened_object,
)
from openhnv.vswitch.fastpath.probe import probe


def test_the_object_is_built_next_to_its_sources() -> None:
    assert object_path() == OBJECT_PATH
    assert OBJECT_PATH.parent.name == "bpf"
    assert (OBJECT_PATH.parent / "hnv.h").is_file()


def test_a_missing_object_names_the_make_target(tmp_path: Path) -> None:
    missing = tmp_path / "hnv_fastpath.o"
    with pytest.raises(
        FastPathError, match=re.escape(f"{missing}") + ".*" + re.escape(MAKE_TARGET)
    ):
        FastPath.load(missing)
    with pytest.raises(VSwitchError):  # the vswitch layer's error, for its callers
        FastPath.load(missing)


def test_probe_says_why_in_one_line(tmp_path: Path) -> None:
    why = probe(tmp_path / "hnv_fastpath.o")
    assert why is not None
    assert MAKE_TARGET in why
    assert "\n" not in why


def test_an_object_that_is_not_one_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.o"
    junk.write_bytes(b"not an ELF file")
    with pytest.raises(FastPathError, match=re.escape(str(junk))):
        FastPath.load(junk)


def test_the_object_holds_the_xdp_meter_and_the_filter_that_does_not_meter_again() -> None:
    if not OBJECT_PATH.is_file():
        pytest.skip(f"not built: {MAKE_TARGET}")
    bpf = libbpf.lib()
    with opened_object() as obj:
        for name in (PROGRAM_XDP_PORT, PROGRAM_SOCKET_CLASSIFY):
            assert bpf.bpf_object__find_program_by_name(obj, name.encode()), name
        sections = subprocess.run(["readelf", "-S", "-W", str(OBJECT_PATH)], capture_output=True,
                                  text=True, check=False).stdout  # fmt: skip
    if sections:  # binutils installed: the program is in an XDP section (libbpf's type)
        assert re.search(r"\sxdp\s", sections)
