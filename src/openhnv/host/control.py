"""The host's control socket: JSON lines over a unix socket, server and client.

Protocol (docs/host-process.md): a client connects to ``<state_dir>/control.sock`` and
writes one JSON object per line, ``{"op": "<name>", ...arguments}``; the server answers
each with one line, ``{"ok": true, "result": <JSON>}`` or ``{"ok": false, "error":
"<one clear sentence>"}``. A connection may carry many requests. Nothing a client sends
can stop the server: a malformed line, an unknown op, bad arguments or a failing
handler all come back as ``ok: false`` on that connection.

The server only dispatches; what each op does is a ``Handler`` given at construction
(``openhnv.host.queries`` builds the host's table).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from openhnv.host.errors import ControlError

log = logging.getLogger(__name__)

CONTROL_SOCKET = "control.sock"
MAX_LINE = 1 << 20  # a request line longer than this is refused
DEFAULT_TIMEOUT = 10.0
STATE_DIR_ENV = "HNV_STATE_DIR"
SHUTDOWN_POLL = 0.05  # seconds between the server loop's looks at a shutdown request

Params = dict[str, Any]
Handler = Callable[[Params], Any]


def socket_path(state_dir: Path | str) -> Path:
    """The control socket of the host whose state directory is ``state_dir``."""
    return Path(state_dir) / CONTROL_SOCKET


def _encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), default=str).encode() + b"\n"


def handle_line(handlers: Mapping[str, Handler], line: bytes) -> dict[str, Any]:
    """The answer to one request line (pure dispatch; never raises)."""
    try:
        request = json.loads(line)
    except (ValueError, UnicodeDecodeError) as err:
        return {"ok": False, "error": f"request is not JSON: {err}"}
    if not isinstance(request, dict):
        return {"ok": False, "error": "request must be a JSON object with an 'op'"}
    op = request.pop("op", None)
    if not isinstance(op, str):
        return {"ok": False, "error": "request has no 'op' string"}
    handler = handlers.get(op)
    if handler is None:
        known = ", ".join(sorted(handlers))
        return {"ok": False, "error": f"unknown op {op!r}: expected one of {known}"}
    try:
        result = handler(request)
    except (ControlError, ValueError, LookupError, TypeError) as err:
        return {"ok": False, "error": str(err) or type(err).__name__}
    except Exception as err:  # a daemon never dies of one request
        log.exception("control op %s failed", op)
        return {"ok": False, "error": f"internal error in {op}: {type(err).__name__}: {err}"}
    return {"ok": True, "result": result}


class _RequestHandler(socketserver.StreamRequestHandler):
    server: _UnixServer

    def handle(self) -> None:
        while True:
            try:
                line = self.rfile.readline(MAX_LINE + 1)
            except OSError:
                return
            if not line:
                return
            if len(line) > MAX_LINE and not line.endswith(b"\n"):
                answer: dict[str, Any] = {"ok": False, "error": f"request over {MAX_LINE} bytes"}
                with contextlib.suppress(OSError):
                    self.wfile.write(_encode(answer))
                return
            if not line.strip():
                continue
            answer = handle_line(self.server.handlers, line)
            try:
                self.wfile.write(_encode(answer))
                self.wfile.flush()
            except OSError:
                return


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, path: str, handlers: Mapping[str, Handler]) -> None:
        self.handlers = handlers
        super().__init__(path, _RequestHandler)


class ControlServer:
    """Serves ``handlers`` on the unix socket ``path`` from a background thread."""

    def __init__(self, path: Path | str, handlers: Mapping[str, Handler]) -> None:
        self.path = Path(path)
        self.handlers = dict(handlers)
        self._server: _UnixServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind (replacing a stale socket file nobody answers on) and start serving."""
        if self.path.exists() or self.path.is_symlink():
            if _answers(self.path):
                raise ControlError(f"another process already serves {self.path}")
            self.path.unlink()
        try:
            self._server = _UnixServer(str(self.path), self.handlers)
        except OSError as err:
            raise ControlError(f"cannot listen on {self.path}: {err.strerror or err}") from None
        os.chmod(self.path, 0o600)
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=SHUTDOWN_POLL),
            name="hnv-control",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and remove the socket file. Idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> ControlServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


class ControlClient:
    """One connection to a host's control socket; ``call`` sends a request, returns the result."""

    def __init__(self, state_dir: Path | str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.state_dir = Path(state_dir)
        self.path = socket_path(self.state_dir)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError):
            self._sock.close()
            raise ControlError(
                f"no host is running in {self.state_dir} (nothing answers on {self.path}); "
                "start one with `hnv host --name NAME --state-dir DIR`"
            ) from None
        except OSError as err:
            self._sock.close()
            raise ControlError(f"cannot reach the host at {self.path}: {err}") from None
        self._file = self._sock.makefile("rb")

    def call(self, op: str, **params: Any) -> Any:
        """Run ``op`` on the host; ``ControlError`` with the host's message if it refused."""
        try:
            self._sock.sendall(_encode({"op": op, **params}))
            line = self._file.readline(MAX_LINE * 64)
        except TimeoutError:
            raise ControlError(f"the host at {self.path} did not answer {op!r} in time") from None
        except OSError as err:
            raise ControlError(f"lost the host at {self.path}: {err}") from None
        if not line:
            raise ControlError(f"the host at {self.path} closed the connection during {op!r}")
        try:
            answer = json.loads(line)
        except ValueError:
            raise ControlError(f"the host at {self.path} sent a line that is not JSON") from None
        if not isinstance(answer, dict) or "ok" not in answer:
            raise ControlError(f"the host at {self.path} sent an answer without 'ok'")
        if not answer["ok"]:
            raise ControlError(str(answer.get("error", "refused without a reason")))
        return answer.get("result")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
            self._sock.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def call(state_dir: Path | str, op: str, *, timeout: float = DEFAULT_TIMEOUT, **params: Any) -> Any:
    """One request on a fresh connection."""
    with ControlClient(state_dir, timeout=timeout) as client:
        return client.call(op, **params)


def resolve_state_dir(given: str | None) -> Path:
    """``--state-dir`` or, when absent, ``$HNV_STATE_DIR``; ``ControlError`` if neither."""
    text = given or os.environ.get(STATE_DIR_ENV)
    if not text:
        raise ControlError(f"no host state directory: pass --state-dir DIR or set {STATE_DIR_ENV}")
    return Path(text)
