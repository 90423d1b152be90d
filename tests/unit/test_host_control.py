"""The control socket protocol: one JSON object per line in, one answer per line out."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openhnv.host.control import (
    MAX_LINE,
    ControlClient,
    ControlServer,
    Params,
    call,
    handle_line,
    resolve_state_dir,
    socket_path,
)
from openhnv.host.errors import ControlError


def boom(_: Params) -> Any:
    raise RuntimeError("kaput")


def refuse(params: Params) -> Any:
    raise ValueError(f"bad port {params.get('port')!r}")


HANDLERS = {
    "echo": lambda p: p,
    "boom": boom,
    "refuse": refuse,
}


def answer(line: bytes) -> dict[str, Any]:
    return handle_line(HANDLERS, line)


def test_a_request_gets_its_result() -> None:
    assert answer(b'{"op": "echo", "port": "p1"}') == {"ok": True, "result": {"port": "p1"}}


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"port": "p1"}', "no 'op'"),
        (b'{"op": 7}', "no 'op'"),
        (b'{"op": "nope"}', "unknown op 'nope': expected one of boom, echo, refuse"),
        (b'{"op": "refuse", "port": "x"}', "bad port 'x'"),
        (b'{"op": "boom"}', "internal error in boom: RuntimeError: kaput"),
    ],
)
def test_bad_requests_are_answered_not_raised(line: bytes, says: str) -> None:
    reply = answer(line)
    assert reply["ok"] is False
    assert says in reply["error"]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Path]:
    server = ControlServer(socket_path(tmp_path), HANDLERS)
    server.start()
    yield tmp_path
    server.stop()


def test_many_requests_on_one_connection_even_after_a_bad_one(served: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(socket_path(served)))
        s.sendall(b'{"op": "echo", "n": 1}\nrubbish\n\n{"op": "echo", "n": 2}\n')
        f = s.makefile("rb")
        replies = [json.loads(f.readline()) for _ in range(3)]
    assert replies[0] == {"ok": True, "result": {"n": 1}}
    assert replies[1]["ok"] is False
    assert replies[2] == {"ok": True, "result": {"n": 2}}


def test_the_client_returns_results_and_raises_refusals(served: Path) -> None:
    with ControlClient(served) as client:
        assert client.call("echo", port="vm1") == {"port": "vm1"}
        with pytest.raises(ControlError, match="bad port 'vm9'"):
            client.call("refuse", port="vm9")
        assert client.call("echo") == {}  # the connection survives a refusal
    assert call(served, "echo", x=[1, 2]) == {"x": [1, 2]}


def test_an_oversized_request_is_refused_and_the_server_lives_on(served: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(socket_path(served)))
        s.sendall(b'{"op": "echo", "pad": "' + b"x" * (MAX_LINE + 10) + b'"}\n')
        reply = json.loads(s.makefile("rb").readline())
    assert reply["ok"] is False
    assert "over" in reply["error"]
    assert call(served, "echo", n=3) == {"n": 3}


def test_no_host_running_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match=f"no host is running in {tmp_path}"):
        call(tmp_path, "echo")


def test_a_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(socket_path(tmp_path)))
    stale.close()  # the file stays, nobody listens
    with pytest.raises(ControlError, match="no host is running"):
        call(tmp_path, "echo")
    with ControlServer(socket_path(tmp_path), HANDLERS):
        assert call(tmp_path, "echo", n=1) == {"n": 1}
    assert not socket_path(tmp_path).exists()


def test_a_live_socket_is_not_taken_over(served: Path) -> None:
    with pytest.raises(ControlError, match="another process already serves"):
        ControlServer(socket_path(served), HANDLERS).start()
    assert call(served, "echo", n=1) == {"n": 1}


def test_state_dir_comes_from_the_option_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HNV_STATE_DIR", "/from/env")
    assert resolve_state_dir("/given") == Path("/given")
    assert resolve_state_dir(None) == Path("/from/env")
    monkeypatch.delenv("HNV_STATE_DIR")
    with pytest.raises(ControlError, match="--state-dir DIR or set HNV_STATE_DIR"):
        resolve_state_dir(None)
