"""``hnv controller`` argument handling (the running service is in tests/functional)."""

from __future__ import annotations

from pathlib import Path

import pytest

from openhnv.api.server import is_loopback, main, parse_listen


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
    argv = ["--listen", "127.0.0.1:1", "--db", str(tmp_path / "no" / "dir" / "db")]
    assert main([*argv, "--auth", "none"]) == 1
    assert "cannot open store" in capsys.readouterr().err


def test_db_and_store_together_are_refused(tmp_path: Path) -> None:
    argv = ["--db", str(tmp_path / "db"), "--store", "etcd://127.0.0.1:1", "--auth", "none"]
    assert main(argv) == 2


def test_a_malformed_store_is_refused() -> None:
    assert main(["--store", "zookeeper://x", "--auth", "none"]) == 2


def _refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    return capsys.readouterr().err


def test_a_listener_without_authentication_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = str(tmp_path / "db")
    for listen in ("127.0.0.1:1", "10.0.0.11:8080"):
        err = _refused(capsys, "--listen", listen, "--db", db)
        assert "--client-ca" in err
        assert "--tokens" in err
        assert "--auth none" in err
    assert not (tmp_path / "db").exists()  # refused before anything was opened


def test_auth_none_is_refused_off_loopback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = str(tmp_path / "db")
    for listen in ("0.0.0.0:8080", "10.0.0.11:8080", "[2001:db8::1]:80", "nc.example:80"):
        err = _refused(capsys, "--listen", listen, "--db", db, "--auth", "none")
        assert f"--auth none is allowed only on a loopback listener, not --listen {listen}" in err


def test_tokens_off_loopback_need_tls(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text('{"tokens": []}')
    err = _refused(capsys, "--listen", "10.0.0.11:8080", "--tokens", str(tokens))
    assert "needs TLS" in err
    assert "--tls-cert" in err


def test_contradictions_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ca = str(tmp_path / "ca.pem")
    assert "go together" in _refused(capsys, "--tls-cert", ca)
    assert "--client-ca needs TLS" in _refused(capsys, "--client-ca", ca)
    err = _refused(capsys, "--auth", "none", "--client-ca", ca, "--tls-cert", ca, "--tls-key", ca)
    assert "contradicts" in err


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("10.0.0.1", False), ("example.org", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
