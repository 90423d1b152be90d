"""``hnv controller`` argument handling (the running service is in tests/functional)."""

from __future__ import annotations

from pathlib import Path

import pytest

from openhnv.api.server import main, parse_listen


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    for bad in ("8080", "host:", "host:99999", ":80"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_listen(bad)


def test_bad_listen_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--listen", "nonsense", "--db", str(tmp_path / "db")]) == 2
    assert "HOST:PORT" in capsys.readouterr().err


def test_unopenable_db_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--listen", "127.0.0.1:1", "--db", str(tmp_path / "no" / "dir" / "db")]) == 1
    assert "cannot open store" in capsys.readouterr().err


def test_db_and_store_together_are_refused(tmp_path: Path) -> None:
    argv = ["--db", str(tmp_path / "db"), "--store", "etcd://127.0.0.1:1"]
    assert main(argv) == 2


def test_a_malformed_store_is_refused() -> None:
    assert main(["--store", "zookeeper://x"]) == 2
