"""What the loader says when it cannot load, and what ``probe`` says (no root needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from openhnv.vswitch.errors import VSwitchError
from openhnv.vswitch.fastpath.errors import FastPathError
from openhnv.vswitch.fastpath.fastpath import MAKE_TARGET, OBJECT_PATH, FastPath, object_path
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
